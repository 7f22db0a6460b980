//! `wasm-router plugin new NAME --kind filter|output [--lang rust|python|js]`: write a plugin
//! project that builds and passes `wasm-router test` as written, and print the steps that do.
//!
//! The projects are the repository's templates and examples, embedded in the binary, with the
//! templates' names (`my-filter` / `my-output`, and `my_filter` / `my_output` in Rust paths
//! and file names) replaced by the new one:
//!
//! | `--lang` | `--kind filter` | `--kind output` |
//! |---|---|---|
//! | `rust` | `examples/plugin-template` | `examples/output-template` |
//! | `python` (componentize-py) | `examples/plugin-python` | `examples/plugin-python/output` |
//! | `js` (jco, componentize-js) | `examples/plugin-js` | `examples/plugin-js/output` |
//!
//! In the repository the Python and JavaScript examples link to what they share: the contract
//! (`wit/` → the workspace's `wit/`), the Rust templates' sample files, and between filter and
//! output the msgpack codec and the toolchain pins. A project gets each as a file of its own.
//! Each language is one [`Lang`] with its templates: a language is added as a variant and its
//! file lists in [`Lang::files`].

use anyhow::{Context, bail};
use clap::ValueEnum;
use std::path::{Path, PathBuf};

/// The kind of plugin to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A filter (world `filter`): events in, outcomes out.
    Filter,
    /// An output (world `output`): batches in, HTTP requests out.
    Output,
}

/// The language of the project.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust, with the `wasm-router-sdk` crate.
    #[default]
    Rust,
    /// Python, built with PyPI's componentize-py.
    Python,
    /// JavaScript, built with npm's jco and componentize-js.
    Js,
}

/// One file of a template: its path in the project and its text.
type TemplateFile = (&'static str, &'static str);

/// The files of `examples/<template>/`, embedded: those every Rust template has, and `extra`
/// (what `wasm-router test` checks it with).
macro_rules! rust_template {
    ($dir:literal, $extra:literal) => {
        rust_template!(
            @files $dir,
            $extra,
            "Cargo.toml",
            "README.md",
            "src/lib.rs",
            "tests/sample.rs",
            "sample.jsonl",
            "sample-config.json"
        )
    };
    (@files $dir:literal, $($file:literal),+) => {
        &[$(($file, include_str!(concat!("../../../../examples/", $dir, "/", $file)))),+]
    };
}

/// The `.gitignore` of a Rust project. (The templates' own also ignore `Cargo.lock`, which
/// the repository does not keep for them; a plugin's repository should commit it.)
const RUST_GITIGNORE: TemplateFile = (".gitignore", "/target\n");

const RUST_FILTER: &[TemplateFile] = rust_template!("plugin-template", "expected.jsonl");
const RUST_OUTPUT: &[TemplateFile] = rust_template!("output-template", "responses.jsonl");

/// `examples/<dir>/<file>` for each file, embedded, at `<file>` in the project.
macro_rules! example_files {
    ($dir:literal, $($file:literal),+) => {
        &[$(($file, include_str!(concat!("../../../../examples/", $dir, "/", $file)))),+]
    };
}

/// The contract, at `wit/plugin.wit` in every Python and JavaScript project (in the
/// repository, their examples link to the workspace's `wit/`).
const WIT: &[TemplateFile] = &[("wit/plugin.wit", include_str!("../../../../wit/plugin.wit"))];

/// The Rust templates' sample files, which the Python and JavaScript examples link to: their
/// plugins pass them as the Rust ones do.
const FILTER_SAMPLES: &[TemplateFile] = example_files!(
    "plugin-template",
    "sample.jsonl",
    "sample-config.json",
    "expected.jsonl"
);
const OUTPUT_SAMPLES: &[TemplateFile] = example_files!(
    "output-template",
    "sample.jsonl",
    "sample-config.json",
    "responses.jsonl"
);

/// What the Python filter and output share: the msgpack codec (at home in `output/`, linked
/// from the filter: componentize-py reads modules only from the plugin's own folder) and the
/// pinned toolchain.
const PYTHON_SHARED: &[TemplateFile] = &[
    (
        "msgpack_lite.py",
        include_str!("../../../../examples/plugin-python/output/msgpack_lite.py"),
    ),
    (
        "requirements.txt",
        include_str!("../../../../examples/plugin-python/requirements.txt"),
    ),
];
const PYTHON_FILTER: &[TemplateFile] = example_files!("plugin-python", "README.md", "app.py");
const PYTHON_OUTPUT: &[TemplateFile] =
    example_files!("plugin-python/output", "README.md", "app.py");

/// What the JavaScript filter and output share: the msgpack codec and the toolchain's lock
/// (linked from `output/`).
const JS_SHARED: &[TemplateFile] =
    example_files!("plugin-js", "msgpack-lite.js", "package-lock.json");
const JS_FILTER: &[TemplateFile] =
    example_files!("plugin-js", "README.md", "filter.js", "package.json");
const JS_OUTPUT: &[TemplateFile] =
    example_files!("plugin-js/output", "README.md", "output.js", "package.json");

/// What the Python and JavaScript projects keep out of version control: the toolchain and
/// what it writes.
const PYTHON_GITIGNORE: TemplateFile = (".gitignore", "/.venv\n__pycache__/\n/wit_world\n*.wasm\n");
const JS_GITIGNORE: TemplateFile = (".gitignore", "/node_modules\n*.wasm\n");

/// The `--limit` of `wasm-router test` for interpreted plugins, as their READMEs give it:
/// room for the interpreter (which also starts in the first call) on a busy machine.
const INTERPRETED_TEST_LIMITS: &str = "--limit deadline=5s,memory=256MiB";

impl Lang {
    /// The template of `kind` in this language: its own files, then those it shares with the
    /// language's other kind or links to in the repository.
    fn files(self, kind: Kind) -> Vec<TemplateFile> {
        let parts: &[&[TemplateFile]] = match (self, kind) {
            (Lang::Rust, Kind::Filter) => &[RUST_FILTER],
            (Lang::Rust, Kind::Output) => &[RUST_OUTPUT],
            (Lang::Python, Kind::Filter) => &[PYTHON_FILTER, PYTHON_SHARED, WIT, FILTER_SAMPLES],
            (Lang::Python, Kind::Output) => &[PYTHON_OUTPUT, PYTHON_SHARED, WIT, OUTPUT_SAMPLES],
            (Lang::Js, Kind::Filter) => &[JS_FILTER, JS_SHARED, WIT, FILTER_SAMPLES],
            (Lang::Js, Kind::Output) => &[JS_OUTPUT, JS_SHARED, WIT, OUTPUT_SAMPLES],
        };
        parts.iter().flat_map(|part| part.iter().copied()).collect()
    }

    /// Files the language's projects get besides the template's.
    fn extra_files(self) -> &'static [TemplateFile] {
        match self {
            Lang::Rust => std::slice::from_ref(&RUST_GITIGNORE),
            Lang::Python => std::slice::from_ref(&PYTHON_GITIGNORE),
            Lang::Js => std::slice::from_ref(&JS_GITIGNORE),
        }
    }

    /// How to build and test the project in `dir` once written.
    fn next_steps(self, kind: Kind, dir: &Path, name: &str) -> String {
        let (world, check) = match kind {
            Kind::Filter => ("filter", "--expect expected.jsonl"),
            Kind::Output => ("output", "--responses responses.jsonl"),
        };
        let wasm = rust_ident(name) + ".wasm";
        let test = "--input sample.jsonl --config sample-config.json";
        let steps = match self {
            Lang::Rust => format!(
                "rustup target add wasm32-wasip2   # once\ncargo test\ncargo build --release --target wasm32-wasip2\nwasm-router test target/wasm32-wasip2/release/{wasm} {test} {check}"
            ),
            Lang::Python => format!(
                "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt   # once\n.venv/bin/componentize-py -d wit -w {world} componentize app -o {wasm}\nwasm-router test {wasm} {test} {check} {INTERPRETED_TEST_LIMITS}"
            ),
            Lang::Js => format!(
                "npm ci   # once\nnpm run build\nwasm-router test {wasm} {test} {check} {INTERPRETED_TEST_LIMITS}"
            ),
        };
        format!("cd {}\n{steps}\n", dir.display())
            .lines()
            .map(|line| format!("  {line}\n"))
            .collect()
    }
}

/// Write a `kind` plugin named `name` in `lang` into `dir` (default: `./NAME`), which must not
/// exist yet.
pub fn run(
    name: &str,
    kind: Kind,
    lang: Lang,
    dir: Option<PathBuf>,
) -> anyhow::Result<std::process::ExitCode> {
    check_name(name)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        bail!(
            "{} already exists: choose another NAME or --dir",
            dir.display()
        );
    }
    let files = lang.files(kind);
    for (path, text) in files.iter().chain(lang.extra_files()) {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, rename(text, name))
            .with_context(|| format!("writing {}", target.display()))?;
    }
    let kind_name = match kind {
        Kind::Filter => "filter",
        Kind::Output => "output",
    };
    super::super::print_stdout(&format!(
        "wrote the {kind_name} plugin {name} in {}; next:\n{}",
        dir.display(),
        lang.next_steps(kind, &dir, name)
    ))?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// A plugin name is a Cargo package name that is also a plugin id: a lowercase letter, then
/// lowercase letters, digits, `-` or `_`.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !first_ok || !rest_ok || name.len() > 64 {
        bail!(
            "{name:?} cannot name a plugin: use a lowercase letter, then lowercase letters, digits, `-` or `_` (at most 64), e.g. \"acme-filter\""
        );
    }
    Ok(())
}

/// The names the templates are written with. A template may carry the other's (the
/// JavaScript output shares the filter's `package-lock.json`).
const TEMPLATE_NAMES: [&str; 2] = ["my-filter", "my-output"];

/// `text` with the templates' names (and their Rust spellings, with `_`) replaced by `name`'s.
fn rename(text: &str, name: &str) -> String {
    TEMPLATE_NAMES
        .iter()
        .fold(text.to_owned(), |text, template| {
            text.replace(template, name)
                .replace(&rust_ident(template), &rust_ident(name))
        })
}

/// A package name as Rust and Cargo spell its library: `-` as `_`.
fn rust_ident(name: &str) -> String {
    name.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LANGS: [Lang; 3] = [Lang::Rust, Lang::Python, Lang::Js];

    #[test]
    fn names_are_checked_and_replaced_in_both_spellings() {
        assert!(check_name("acme-filter2").is_ok());
        for bad in ["", "Acme", "1x", "a b", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            rename(
                "name = \"my-filter\"\nmy_filter::my_filter my-output-js",
                "acme-x"
            ),
            "name = \"acme-x\"\nacme_x::acme_x acme-x-js"
        );
    }

    #[test]
    fn every_template_names_itself() {
        for lang in LANGS {
            for (kind, name) in [(Kind::Filter, "my-filter"), (Kind::Output, "my-output")] {
                let files = lang.files(kind);
                let (manifest, line) = match lang {
                    Lang::Rust => ("Cargo.toml", format!("name = \"{name}\"")),
                    Lang::Python => ("app.py", format!("NAME = \"{name}\"")),
                    Lang::Js => (
                        if kind == Kind::Filter {
                            "filter.js"
                        } else {
                            "output.js"
                        },
                        format!("const NAME = \"{name}\""),
                    ),
                };
                let text = files.iter().find(|(p, _)| *p == manifest).unwrap().1;
                assert!(text.contains(&line), "{lang:?} {kind:?}");
            }
        }
    }

    #[test]
    fn python_and_js_projects_build_from_their_own_wit_and_sample_files() {
        for lang in [Lang::Python, Lang::Js] {
            for (kind, check) in [
                (Kind::Filter, "expected.jsonl"),
                (Kind::Output, "responses.jsonl"),
            ] {
                let files = lang.files(kind);
                let text: String = files.iter().map(|(_, text)| *text).collect();
                assert!(
                    !text.contains("../"),
                    "{lang:?} {kind:?} points outside the project"
                );
                for path in [
                    "wit/plugin.wit",
                    "sample.jsonl",
                    "sample-config.json",
                    check,
                ] {
                    assert!(
                        files.iter().any(|(p, _)| *p == path),
                        "{lang:?} {kind:?}: {path}"
                    );
                }
            }
        }
    }
}
