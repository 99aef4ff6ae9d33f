//! The attack classifier's classes: the families the issue asks for, in a fixed order
//! that the model file's class list records.

use serde::{Deserialize, Serialize};

/// An attack family the classifier can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// SQL injection.
    Sqli,
    /// Cross-site scripting.
    Xss,
    /// Path traversal / local file inclusion.
    Traversal,
    /// OS command injection / remote code execution.
    Cmdi,
    /// Remote file inclusion / server-side request forgery.
    Rfi,
    /// Server-side template injection.
    Ssti,
    /// XML external entities.
    Xxe,
    /// Scanners and probes for well-known files.
    Scanner,
    /// Anything else (e.g. header injection, oversized junk).
    Other,
}

impl Category {
    /// Every class, in the order of the classifier's outputs.
    pub const ALL: [Category; 9] = [
        Category::Sqli,
        Category::Xss,
        Category::Traversal,
        Category::Cmdi,
        Category::Rfi,
        Category::Ssti,
        Category::Xxe,
        Category::Scanner,
        Category::Other,
    ];

    /// The stable name used in files, threats and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Sqli => "sqli",
            Category::Xss => "xss",
            Category::Traversal => "traversal",
            Category::Cmdi => "cmdi",
            Category::Rfi => "rfi",
            Category::Ssti => "ssti",
            Category::Xxe => "xxe",
            Category::Scanner => "scanner",
            Category::Other => "other",
        }
    }

    /// The class's output index.
    pub fn index(self) -> usize {
        Category::ALL.iter().position(|c| *c == self).unwrap_or(8)
    }

    /// The class at an output index.
    pub fn from_index(i: usize) -> Category {
        Category::ALL.get(i).copied().unwrap_or(Category::Other)
    }

    /// Parses a stable name (also the detection rules' names `lfi`, `rce`, `ssrf`).
    pub fn parse(s: &str) -> Option<Category> {
        Some(match s {
            "sqli" => Category::Sqli,
            "xss" => Category::Xss,
            "traversal" | "lfi" => Category::Traversal,
            "cmdi" | "rce" => Category::Cmdi,
            "rfi" | "ssrf" => Category::Rfi,
            "ssti" => Category::Ssti,
            "xxe" => Category::Xxe,
            "scanner" => Category::Scanner,
            "other" => Category::Other,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_index_and_parse() {
        for (i, c) in Category::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(Category::from_index(i), *c);
            assert_eq!(Category::parse(c.as_str()), Some(*c));
        }
        assert_eq!(Category::parse("lfi"), Some(Category::Traversal));
        assert_eq!(Category::parse("nope"), None);
    }
}
