//! Experiment files as TOML tables that remember where every key was written: loading,
//! `extends = "other.toml"` chains, deep merging, and errors that name file, line, column and key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Where a key was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A bad experiment file: one line naming the file (and where known line, column and key) and
/// what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExperimentError {
    /// At a key.
    #[error("{loc}: {key}: {message}")]
    At {
        /// Where.
        loc: Loc,
        /// Dotted key path.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// Somewhere in a file (no key to point at).
    #[error("{loc}: {message}")]
    Syntax {
        /// Where.
        loc: Loc,
        /// What is wrong.
        message: String,
    },
    /// A whole file.
    #[error("{file}: {message}")]
    File {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A merged experiment document and the position of each of its keys.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The merged table (`extends` removed).
    pub table: toml::Table,
    /// Dotted path (`a.b`, array elements `a.b[2]`) → where it was last set.
    pub locs: BTreeMap<String, Loc>,
    /// The file asked for (the chain's child).
    pub file: PathBuf,
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit_once('\n')
        .map_or(before, |(_, tail)| tail)
        .chars()
        .count()
        + 1;
    (line, col)
}

fn loc_at(file: &Path, text: &str, offset: usize) -> Loc {
    let (line, col) = line_col(text, offset);
    Loc {
        file: file.to_path_buf(),
        line,
        col,
    }
}

fn walk_table(t: &DeTable, prefix: &str, file: &Path, text: &str, out: &mut BTreeMap<String, Loc>) {
    for (k, v) in t.iter() {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        out.insert(path.clone(), loc_at(file, text, k.span().start));
        walk_value(v, &path, file, text, out);
    }
}

fn walk_value(
    v: &Spanned<DeValue>,
    path: &str,
    file: &Path,
    text: &str,
    out: &mut BTreeMap<String, Loc>,
) {
    match v.get_ref() {
        DeValue::Table(t) => walk_table(t, path, file, text, out),
        DeValue::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.insert(p.clone(), loc_at(file, text, e.span().start));
                walk_value(e, &p, file, text, out);
            }
        }
        _ => {}
    }
}

/// Merge `over` into `base`: tables merge key by key, anything else replaces.
pub fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Apply `--set KEY=VALUE` overrides to a loaded document, in order: KEY is a TOML key path
/// (`devices.count`, `sweep."channel.snr_db"`), VALUE a TOML value (`4`, `[10, 20]`, `true`,
/// `"text"`), or, when it does not parse as one, a bare string (`model.name=smollm2-135m`).
/// Tables merge as in `extends`; errors about a set key later name `--set KEY=VALUE`.
pub fn apply_sets(doc: &mut Doc, sets: &[String]) -> Result<(), ExperimentError> {
    for arg in sets {
        let file = PathBuf::from(format!("--set {arg}"));
        let Some((key, value)) = arg.split_once('=') else {
            return Err(ExperimentError::File {
                file,
                message: "expected KEY=VALUE (e.g. devices.count=4)".into(),
            });
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(ExperimentError::File {
                file,
                message: "the key before '=' is empty".into(),
            });
        }
        let as_toml = parse(&file, &format!("{key} = {value}"));
        let over = match as_toml {
            Ok(d) => d,
            Err(_) => {
                let quoted = toml::Value::String(value.to_string()).to_string();
                parse(&file, &format!("{key} = {quoted}")).map_err(|_| ExperimentError::File {
                    file: file.clone(),
                    message: format!("'{key}' is not a TOML key path (e.g. devices.count)"),
                })?
            }
        };
        merge(&mut doc.table, over.table);
        doc.locs.extend(over.locs);
    }
    Ok(())
}

/// Load `path`, following `extends` (relative to the file that says it), child keys overriding.
pub fn load(path: &Path) -> Result<Doc, ExperimentError> {
    load_chain(path, &mut Vec::new())
}

/// A TOML parser message on one line; an integer beyond TOML's signed 64-bit range says how to
/// write it (the seed is a u64: its upper half only fits as a string).
fn syntax_message(m: &str) -> String {
    let m = m.trim().replace('\n', " ");
    if m.contains("too large") || m.contains("out of range") {
        format!("{m} (TOML integers are signed 64-bit, at most 9223372036854775807; write a larger seed as a string: seed = \"18446744073709551615\")")
    } else {
        m
    }
}

/// Parse one document from `text` (named `file` in errors), without following `extends`.
pub fn parse(file: &Path, text: &str) -> Result<Doc, ExperimentError> {
    let de = DeTable::parse(text).map_err(|e| ExperimentError::Syntax {
        loc: loc_at(file, text, e.span().map_or(0, |s| s.start)),
        message: syntax_message(e.message()),
    })?;
    let table: toml::Table = toml::from_str(text).map_err(|e| ExperimentError::Syntax {
        loc: loc_at(file, text, e.span().map_or(0, |s| s.start)),
        message: syntax_message(e.message()),
    })?;
    let mut locs = BTreeMap::new();
    walk_table(de.get_ref(), "", file, text, &mut locs);
    Ok(Doc {
        table,
        locs,
        file: file.to_path_buf(),
    })
}

fn load_chain(path: &Path, seen: &mut Vec<PathBuf>) -> Result<Doc, ExperimentError> {
    let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::File {
        file: path.to_path_buf(),
        message: format!("cannot read the experiment file: {e}"),
    })?;
    let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if seen.contains(&canon) {
        return Err(ExperimentError::File {
            file: path.to_path_buf(),
            message: "extends itself (a cycle of `extends`)".into(),
        });
    }
    seen.push(canon);
    let mut doc = parse(path, &text)?;
    let Some(ext) = doc.table.remove("extends") else {
        return Ok(doc);
    };
    let Some(ext_path) = ext.as_str() else {
        return Err(doc.error(
            "extends",
            format!(
                "expected the path of another experiment file (a string), found {}",
                ext.type_str()
            ),
        ));
    };
    let base_path = path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(ext_path);
    if !base_path.is_file() {
        return Err(doc.error("extends", format!("no such file '{}'", base_path.display())));
    }
    let mut base = load_chain(&base_path, seen)?;
    merge(&mut base.table, doc.table);
    base.locs.append(&mut doc.locs);
    base.file = doc.file;
    Ok(base)
}

impl Doc {
    /// Where `key` (a dotted path, possibly with `[i]`) was written, or its nearest enclosing
    /// key's position.
    pub fn loc(&self, key: &str) -> Option<&Loc> {
        let mut k = key;
        loop {
            if let Some(l) = self.locs.get(k) {
                return Some(l);
            }
            let cut = k.rfind(['.', '['])?;
            k = &k[..cut];
        }
    }

    /// An error at `key`.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ExperimentError {
        match self.loc(key) {
            Some(loc) => ExperimentError::At {
                loc: loc.clone(),
                key: key.to_string(),
                message: message.into(),
            },
            None => ExperimentError::File {
                file: self.file.clone(),
                message: format!("{key}: {}", message.into()),
            },
        }
    }

    /// The directory relative paths given at `key` are taken from (that of the file that set it).
    pub fn base_dir(&self, key: &str) -> PathBuf {
        let file = self.loc(key).map_or(&self.file, |l| &l.file);
        file.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("airinfer-src-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn positions_of_keys_tables_and_array_elements() {
        let text = "a = 1\n[b]\n  c = \"x\"\nd = [1,\n 2]\n[[p]]\nq = 3\n";
        let doc = parse(Path::new("f.toml"), text).unwrap();
        let at = |k: &str| {
            let l = doc.loc(k).unwrap();
            (l.line, l.col)
        };
        assert_eq!(at("a"), (1, 1));
        assert_eq!(at("b.c"), (3, 3));
        assert_eq!(at("b.d"), (4, 1));
        assert_eq!(at("b.d[1]"), (5, 2));
        assert_eq!(at("p[0].q"), (7, 1));
        // an unknown sub-key falls back to its parent
        assert_eq!(at("b.c.zz"), (3, 3));
        assert_eq!(line_col("é\nxy", 4), (2, 2));
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = parse(Path::new("f.toml"), "a = 1\nb = = 2\n").unwrap_err();
        match e {
            ExperimentError::Syntax { loc, .. } => assert_eq!(loc.line, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn extends_merges_tables_and_child_positions_win() {
        let d = tmp("ext");
        std::fs::write(
            d.join("base.toml"),
            "seed = 1\n[channel]\nsnr_db = 10\nrx_antennas = 4\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(
            d.join("sub/child.toml"),
            "extends = \"../base.toml\"\n[channel]\nsnr_db = 20\n",
        )
        .unwrap();
        let doc = load(&d.join("sub/child.toml")).unwrap();
        assert_eq!(doc.table["seed"].as_integer(), Some(1));
        assert_eq!(doc.table["channel"]["snr_db"].as_integer(), Some(20));
        assert_eq!(doc.table["channel"]["rx_antennas"].as_integer(), Some(4));
        assert!(doc.table.get("extends").is_none());
        assert!(doc
            .loc("channel.snr_db")
            .unwrap()
            .file
            .ends_with("child.toml"));
        assert!(doc
            .loc("channel.rx_antennas")
            .unwrap()
            .file
            .ends_with("base.toml"));
        // a cycle and a missing base are errors naming the file
        std::fs::write(d.join("a.toml"), "extends = \"b.toml\"\n").unwrap();
        std::fs::write(d.join("b.toml"), "extends = \"a.toml\"\n").unwrap();
        assert!(load(&d.join("a.toml"))
            .unwrap_err()
            .to_string()
            .contains("cycle"));
        std::fs::write(d.join("c.toml"), "\n extends = \"nope.toml\"\n").unwrap();
        let e = load(&d.join("c.toml")).unwrap_err().to_string();
        assert!(e.contains("c.toml:2:2: extends: no such file"), "{e}");
        std::fs::remove_dir_all(&d).ok();
    }
}
