//! `wasm-router plugin new NAME --kind filter|output [--lang rust|python|js]`: write a plugin
//! project that builds and passes `wasm-router test` as written.
//!
//! The projects are the repository's templates and examples, embedded in the binary, with the
//! template's name (`my-filter` / `my-output`, and `my_filter` / `my_output` in Rust paths and
//! file names) replaced by the new one:
//!
//! | `--lang` | `--kind filter` | `--kind output` |
//! |---|---|---|
//! | `rust` | `examples/plugin-template` | `examples/output-template` |
//! | `python` | `examples/plugin-python` | none yet (refused) |
//! | `js` | `examples/plugin-js` | none yet (refused) |
//!
//! The Python and JavaScript projects also get what their example takes from the repository
//! through links: the contract (`wit/plugin.wit`) and the Rust filter template's sample files
//! (`sample.jsonl`, `sample-config.json`, `expected.jsonl`). Each language is one [`Lang`] with
//! its templates: a language is added as a variant and its file lists in [`Lang::files`].

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
    /// Python, built with PyPI's componentize-py (filters only so far).
    Python,
    /// JavaScript, built with npm's jco and componentize-js (filters only so far).
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

/// `examples/<dir>/<file>` for each file, embedded.
macro_rules! example_files {
    ($dir:literal, $($file:literal),+) => {
        &[$(($file, include_str!(concat!("../../../../examples/", $dir, "/", $file)))),+]
    };
}

/// What the Python and JavaScript examples link to in the repository: the contract, and the
/// Rust filter template's sample files, which their filter passes as the Rust one does.
const LINKED_FILTER_FILES: &[TemplateFile] = &[
    ("wit/plugin.wit", include_str!("../../../../wit/plugin.wit")),
    (
        "sample.jsonl",
        include_str!("../../../../examples/plugin-template/sample.jsonl"),
    ),
    (
        "sample-config.json",
        include_str!("../../../../examples/plugin-template/sample-config.json"),
    ),
    (
        "expected.jsonl",
        include_str!("../../../../examples/plugin-template/expected.jsonl"),
    ),
];

const PYTHON_FILTER: &[TemplateFile] = example_files!(
    "plugin-python",
    "README.md",
    "app.py",
    "msgpack_lite.py",
    "requirements.txt"
);
const JS_FILTER: &[TemplateFile] = example_files!(
    "plugin-js",
    "README.md",
    "filter.js",
    "msgpack-lite.js",
    "package.json",
    "package-lock.json"
);

/// What the Python and JavaScript projects keep out of version control: the toolchain and
/// what it writes.
const PYTHON_GITIGNORE: TemplateFile = (".gitignore", "/.venv\n__pycache__/\n/wit_world\n*.wasm\n");
const JS_GITIGNORE: TemplateFile = (".gitignore", "/node_modules\n*.wasm\n");

/// The `--limit` of `wasm-router test` for interpreted plugins, as their READMEs give it:
/// room for the interpreter (which also starts in the first call) on a busy machine.
const INTERPRETED_TEST_LIMITS: &str = "--limit deadline=5s,memory=256MiB";

impl Lang {
    /// The template of `kind` in this language (its files, then those its example links to),
    /// and the name it is written with; an error naming what exists when there is none.
    fn files(self, kind: Kind) -> anyhow::Result<(Vec<TemplateFile>, &'static str)> {
        let (own, linked, name): (&[TemplateFile], &[TemplateFile], _) = match (self, kind) {
            (Lang::Rust, Kind::Filter) => (RUST_FILTER, &[], "my-filter"),
            (Lang::Rust, Kind::Output) => (RUST_OUTPUT, &[], "my-output"),
            (Lang::Python, Kind::Filter) => (PYTHON_FILTER, LINKED_FILTER_FILES, "my-filter"),
            (Lang::Js, Kind::Filter) => (JS_FILTER, LINKED_FILTER_FILES, "my-filter"),
            (Lang::Python | Lang::Js, Kind::Output) => bail!(
                "{} output plugins have no template yet: start from `--lang {} --kind filter` \
                 (the same info/init, with encode/on-response of the `output` world of \
                 wit/plugin.wit instead of process) or use `--lang rust --kind output`",
                self.display_name(),
                self.flag()
            ),
        };
        Ok((own.iter().chain(linked).copied().collect(), name))
    }

    /// Files the language's projects get besides the template's.
    fn extra_files(self) -> &'static [TemplateFile] {
        match self {
            Lang::Rust => std::slice::from_ref(&RUST_GITIGNORE),
            Lang::Python => std::slice::from_ref(&PYTHON_GITIGNORE),
            Lang::Js => std::slice::from_ref(&JS_GITIGNORE),
        }
    }

    /// The language as people write it.
    fn display_name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }

    /// The language as `--lang` spells it.
    fn flag(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// How to build and test the project in `dir` once written.
    fn next_steps(self, kind: Kind, dir: &Path, name: &str) -> String {
        match self {
            Lang::Rust => {
                let wasm = format!("target/wasm32-wasip2/release/{}.wasm", rust_ident(name));
                let check = match kind {
                    Kind::Filter => "--expect expected.jsonl",
                    Kind::Output => "--responses responses.jsonl",
                };
                format!(
                    "  cd {}\n  rustup target add wasm32-wasip2   # once\n  cargo test\n  cargo build --release --target wasm32-wasip2\n  wasm-router test {wasm} --input sample.jsonl --config sample-config.json {check}\n",
                    dir.display()
                )
            }
            // Filters only: `files` refuses the output kind first.
            Lang::Python => format!(
                "  cd {}\n  python3 -m venv .venv && .venv/bin/pip install -r requirements.txt   # once\n  .venv/bin/componentize-py -d wit -w filter componentize app -o {wasm}\n  wasm-router test {wasm} --input sample.jsonl --config sample-config.json --expect expected.jsonl {INTERPRETED_TEST_LIMITS}\n",
                dir.display(),
                wasm = rust_ident(name) + ".wasm",
            ),
            Lang::Js => format!(
                "  cd {}\n  npm ci   # once\n  npm run build\n  wasm-router test {wasm} --input sample.jsonl --config sample-config.json --expect expected.jsonl {INTERPRETED_TEST_LIMITS}\n",
                dir.display(),
                wasm = rust_ident(name) + ".wasm",
            ),
        }
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
    let (files, template_name) = lang.files(kind)?;
    for (path, text) in files.iter().chain(lang.extra_files()) {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, rename(text, template_name, name))
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

/// `text` with the template's name (and its Rust spelling, with `_`) replaced by `name`'s.
fn rename(text: &str, template_name: &str, name: &str) -> String {
    text.replace(template_name, name)
        .replace(&rust_ident(template_name), &rust_ident(name))
}

/// A package name as Rust and Cargo spell its library: `-` as `_`.
fn rust_ident(name: &str) -> String {
    name.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_replaced_in_both_spellings() {
        assert!(check_name("acme-filter2").is_ok());
        for bad in ["", "Acme", "1x", "a b", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            rename(
                "name = \"my-filter\"\nmy_filter::my_filter",
                "my-filter",
                "acme-x"
            ),
            "name = \"acme-x\"\nacme_x::acme_x"
        );
    }

    #[test]
    fn every_template_names_itself() {
        for kind in [Kind::Filter, Kind::Output] {
            let (files, name) = Lang::Rust.files(kind).unwrap();
            let cargo = files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
            assert!(cargo.contains(&format!("name = \"{name}\"")), "{kind:?}");
        }
        for (lang, plugin) in [(Lang::Python, "app.py"), (Lang::Js, "filter.js")] {
            let (files, name) = lang.files(Kind::Filter).unwrap();
            let text = files.iter().find(|(p, _)| *p == plugin).unwrap().1;
            assert!(text.contains(&format!("NAME = \"{name}\"")), "{lang:?}");
        }
    }

    #[test]
    fn interpreted_projects_build_from_their_own_wit_and_sample_files() {
        for lang in [Lang::Python, Lang::Js] {
            let (files, _) = lang.files(Kind::Filter).unwrap();
            let text: String = files.iter().map(|(_, text)| *text).collect();
            assert!(!text.contains("../"), "{lang:?} points outside the project");
            for path in [
                "wit/plugin.wit",
                "sample.jsonl",
                "sample-config.json",
                "expected.jsonl",
            ] {
                assert!(files.iter().any(|(p, _)| *p == path), "{lang:?}: {path}");
            }
        }
    }

    #[test]
    fn interpreted_outputs_are_refused_naming_what_exists() {
        for lang in [Lang::Python, Lang::Js] {
            let err = lang.files(Kind::Output).unwrap_err().to_string();
            assert!(err.contains("no template yet"), "{err}");
            assert!(
                err.contains("--kind filter") && err.contains("--lang rust"),
                "{err}"
            );
        }
    }
}
