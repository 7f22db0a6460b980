//! Unit tests of the classic parser and mapper.
