//! OWASP Core Rule Set (and other ModSecurity SecLang) rule files, loaded as they are and
//! run inside Palisade's engine.
//!
//! Users switching from ModSecurity keep their rules and exclusions: `crs_dir` points at
//! a CRS 3.3/4.x checkout or Debian's `modsecurity-crs` (whose `owasp-crs.load` include
//! list is followed). The SecLang subset CRS uses is supported — `SecRule` (variables,
//! operators, transformations, `chain`), `SecAction`, `SecMarker`/`skipAfter`, `setvar`
//! anomaly scoring, paranoia levels, runtime `ctl:ruleRemove*` and the configure-time
//! `SecRuleRemove*`/`SecRuleUpdateTarget*` directives of the exclusion files.
//!
//! What cannot run is counted and reported by [`LoadReport`], never fatal: regexes the
//! linear-time `regex` crate cannot compile (look-around, backreferences, possessive
//! quantifiers), unimplemented operators (`@rbl`, `@geoLookup`, ...), transformations
//! (`t:sha1`, `t:md5`), unknown directives, and response-phase rules (Palisade inspects
//! requests). A skipped rule simply does not fire; its chain goes with it.

pub mod entity_semicolon;
pub mod eval;
pub mod lexer;
pub mod operator;
pub mod request;
pub mod rule;
pub mod tautology;
pub mod transform;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use eval::Outcome;
pub use rule::{SecRule, SkipReason};

use crate::request::HttpRequest;
use rule::{parse_id_ranges, parse_vars};

/// How deep `Include` may nest.
const MAX_INCLUDE_DEPTH: usize = 8;

/// Directives that configure ModSecurity itself (body limits, audit logs, ...): Palisade
/// has its own settings for these, so they are accepted and have no effect.
const ENGINE_DIRECTIVES: &[&str] = &[
    "secruleengine",
    "secrequestbodyaccess",
    "secresponsebodyaccess",
    "secrequestbodylimit",
    "secrequestbodynofileslimit",
    "secrequestbodyinmemorylimit",
    "secrequestbodylimitaction",
    "secresponsebodylimit",
    "secresponsebodylimitaction",
    "secresponsebodymimetype",
    "secpcrematchlimit",
    "secpcrematchlimitrecursion",
    "sectmpdir",
    "secdatadir",
    "secuploaddir",
    "secdebuglog",
    "secdebugloglevel",
    "secauditengine",
    "secauditlog",
    "secauditlog2",
    "secauditlogparts",
    "secauditlogrelevantstatus",
    "secauditlogtype",
    "secauditlogstoragedir",
    "secauditlogformat",
    "secauditlogdirmode",
    "secauditlogfilemode",
    "secargumentseparator",
    "seccookieformat",
    "secunicodemapfile",
    "secstatusengine",
    "seccomponentsignature",
    "seccollectiontimeout",
    "secdefaultaction",
    "secserversignature",
    "secreqbodyjsondepthlimit",
    "secrequestbodyjsondepthlimit",
    "secargumentslimit",
];

/// One item of a phase's rule list.
#[derive(Debug, Clone)]
pub enum Item {
    /// A rule (with its chain).
    Rule(Box<SecRule>),
    /// A `SecMarker`, target of `skipAfter`.
    Marker(String),
}

/// A rule that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRule {
    /// The rule's id (0 when it had none).
    pub id: u32,
    /// The file (name only) and line.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Why.
    pub reason: SkipReason,
}

/// What a load found: how many rules run, and everything that does not, so operators
/// know exactly what is enforced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Files read, in order.
    pub files: Vec<String>,
    /// Request-phase rules compiled (a chain counts once).
    pub rules_loaded: usize,
    /// Rules not loaded, with the reason (response-phase rules included).
    pub skipped: Vec<SkippedRule>,
    /// `SecMarker`s.
    pub markers: usize,
    /// Rules removed by `SecRuleRemoveById`/`ByTag`/`ByMsg`.
    pub removed: usize,
    /// Directives not supported, by name, with counts (their effect is missing).
    pub unsupported_directives: BTreeMap<String, usize>,
    /// ModSecurity engine settings accepted without effect, by name.
    pub ignored_directives: BTreeMap<String, usize>,
    /// Actions not understood (rule kept, action ignored), by name.
    pub unknown_actions: BTreeMap<String, usize>,
}

impl LoadReport {
    /// Skipped rules counted by reason kind (`regex`, `operator`, `response_phase`, ...).
    pub fn skipped_by_kind(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for s in &self.skipped {
            *m.entry(s.reason.kind()).or_insert(0) += 1;
        }
        m
    }

    /// One line for logs and health: `N rules loaded; skipped: regex 3, ...`.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .skipped_by_kind()
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let dirs: Vec<String> = self
            .unsupported_directives
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        format!(
            "{} files, {} request rules loaded, {} removed by exclusions; skipped: {}; unsupported directives: {}",
            self.files.len(),
            self.rules_loaded,
            self.removed,
            if kinds.is_empty() {
                "none".into()
            } else {
                kinds.join(", ")
            },
            if dirs.is_empty() {
                "none".into()
            } else {
                dirs.join(", ")
            },
        )
    }
}

/// Why rule files could not be read at all (anything inside them is a [`LoadReport`]
/// entry instead).
#[derive(Debug, thiserror::Error)]
pub enum SeclangError {
    /// A file or directory could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The directory holds no rule files.
    #[error("{0}: no SecLang rule files (*.conf, rules/*.conf or owasp-crs.load) found")]
    Empty(String),
}

/// A loaded rule program: the request-phase rules in order, per phase.
#[derive(Debug, Default)]
pub struct Program {
    pub(crate) phase1: Vec<Item>,
    pub(crate) phase2: Vec<Item>,
    report: LoadReport,
    /// `@rx` patterns with macros, compiled after expansion (bounded).
    pub(crate) rx_cache:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<regex::bytes::Regex>>>,
}

impl Clone for Program {
    fn clone(&self) -> Program {
        Program {
            phase1: self.phase1.clone(),
            phase2: self.phase2.clone(),
            report: self.report.clone(),
            rx_cache: Default::default(),
        }
    }
}

/// Configure-time edits applied once every file is read.
enum Edit {
    RemoveIds(Vec<(u32, u32)>),
    RemoveTag(String),
    RemoveMsg(String),
    UpdateTargetIds(Vec<(u32, u32)>, String),
    UpdateTargetTag(String, String),
}

#[derive(Default)]
struct Loader {
    program: Program,
    edits: Vec<Edit>,
    /// Links of a chain being read, and whether it is already broken (one link failed).
    chain: Vec<SecRule>,
    chain_broken: Option<SkippedRule>,
    /// Distinct transformation lists seen, for [`SecRule::tchain`].
    tchains: Vec<Vec<transform::SecTransform>>,
}

impl Program {
    /// Loads a CRS directory: `owasp-crs.load` when present (Debian), else
    /// `crs-setup.conf` (or `.example`) followed by `rules/*.conf` (or `*.conf`).
    pub fn load_dir(dir: &Path) -> Result<Program, SeclangError> {
        let io = |path: &Path, source| SeclangError::Io {
            path: path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(dir).map_err(|e| io(dir, e))?;
        if !meta.is_dir() {
            return Program::load_files(&[dir.to_path_buf()]);
        }
        let load = dir.join("owasp-crs.load");
        if load.is_file() {
            return Program::load_files(&[load]);
        }
        let mut files = Vec::new();
        for setup in ["crs-setup.conf", "crs-setup.conf.example"] {
            let p = dir.join(setup);
            if p.is_file() {
                files.push(p);
                break;
            }
        }
        let rules = if dir.join("rules").is_dir() {
            dir.join("rules")
        } else {
            dir.to_path_buf()
        };
        let mut confs = glob_dir(&rules, "*.conf").map_err(|e| io(&rules, e))?;
        if confs.is_empty() {
            return Err(SeclangError::Empty(dir.display().to_string()));
        }
        files.append(&mut confs);
        Program::load_files(&files)
    }

    /// Loads the given files in order (`Include` directives inside are followed).
    pub fn load_files(files: &[PathBuf]) -> Result<Program, SeclangError> {
        let mut l = Loader::default();
        for f in files {
            l.file(f, 0)?;
        }
        Ok(l.finish())
    }

    /// Parses SecLang text (for tests and inline rules); `base` resolves data files.
    pub fn from_text(name: &str, text: &str, base: &Path) -> Program {
        let mut l = Loader::default();
        l.text(name, text, base, 0);
        l.finish()
    }

    /// What was loaded and what was not.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Ids of the loaded request-phase rules, in order.
    pub fn rule_ids(&self) -> Vec<u32> {
        self.phase1
            .iter()
            .chain(&self.phase2)
            .filter_map(|i| match i {
                Item::Rule(r) if r.id != 0 => Some(r.id),
                _ => None,
            })
            .collect()
    }

    /// Runs the program on one request.
    pub fn run(&self, req: &HttpRequest, paranoia: u8, threshold: u32) -> Outcome {
        eval::run(self, req, paranoia, threshold)
    }
}

/// Files in `dir` whose name matches `pattern` (one `*` at most), sorted.
fn glob_dir(dir: &Path, pattern: &str) -> std::io::Result<Vec<PathBuf>> {
    let (pre, post) = pattern.split_once('*').unwrap_or((pattern, ""));
    let exact = !pattern.contains('*');
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if exact {
                name == pattern
            } else {
                name.len() >= pre.len() + post.len()
                    && name.starts_with(pre)
                    && name.ends_with(post)
            }
        })
        .collect();
    out.sort();
    Ok(out)
}

impl Loader {
    fn file(&mut self, path: &Path, depth: usize) -> Result<(), SeclangError> {
        let bytes = std::fs::read(path).map_err(|e| SeclangError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let base = path.parent().unwrap_or(Path::new("."));
        self.text(&path.display().to_string(), &text, base, depth);
        Ok(())
    }

    fn text(&mut self, name: &str, text: &str, base: &Path, depth: usize) {
        self.program.report.files.push(name.to_string());
        let short = Path::new(name)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(name)
            .to_string();
        for d in lexer::directives(text) {
            let lname = d.name.to_ascii_lowercase();
            let arg = |i: usize| d.args.get(i).map(String::as_str);
            match lname.as_str() {
                "secrule" => match (arg(0), arg(1)) {
                    (Some(vars), Some(op)) => self.rule(
                        Some(vars),
                        Some(op),
                        arg(2).unwrap_or(""),
                        base,
                        &short,
                        d.line,
                    ),
                    _ => self.skip(
                        0,
                        &short,
                        d.line,
                        SkipReason::Syntax("SecRule needs variables and an operator".into()),
                    ),
                },
                "secaction" => self.rule(None, None, arg(0).unwrap_or(""), base, &short, d.line),
                "secmarker" => {
                    let m = lexer::unquote(arg(0).unwrap_or("")).to_string();
                    self.program.report.markers += 1;
                    self.program.phase1.push(Item::Marker(m.clone()));
                    self.program.phase2.push(Item::Marker(m));
                }
                "include" | "includeoptional" => {
                    let Some(p) = arg(0) else { continue };
                    if depth >= MAX_INCLUDE_DEPTH {
                        self.unsupported("Include (nested too deep)");
                        continue;
                    }
                    let p = base.join(p);
                    let (dir, pat) = (
                        p.parent().unwrap_or(Path::new(".")).to_path_buf(),
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or("")
                            .to_string(),
                    );
                    match glob_dir(&dir, &pat) {
                        Ok(files) => {
                            for f in files {
                                if let Err(e) = self.file(&f, depth + 1) {
                                    self.unsupported(&format!("Include {e}"));
                                }
                            }
                        }
                        Err(e) if lname == "include" => {
                            self.unsupported(&format!("Include {}: {e}", p.display()));
                        }
                        Err(_) => {}
                    }
                }
                "secruleremovebyid" => {
                    let ids = d.args.iter().flat_map(|a| parse_id_ranges(a)).collect();
                    self.edits.push(Edit::RemoveIds(ids));
                }
                "secruleremovebytag" => {
                    self.edits
                        .push(Edit::RemoveTag(arg(0).unwrap_or("").to_string()));
                }
                "secruleremovebymsg" => {
                    self.edits
                        .push(Edit::RemoveMsg(arg(0).unwrap_or("").to_string()));
                }
                "secruleupdatetargetbyid" => self.edits.push(Edit::UpdateTargetIds(
                    parse_id_ranges(arg(0).unwrap_or("")),
                    arg(1).unwrap_or("").to_string(),
                )),
                "secruleupdatetargetbytag" => self.edits.push(Edit::UpdateTargetTag(
                    arg(0).unwrap_or("").to_string(),
                    arg(1).unwrap_or("").to_string(),
                )),
                n if ENGINE_DIRECTIVES.contains(&n) => {
                    *self
                        .program
                        .report
                        .ignored_directives
                        .entry(d.name.clone())
                        .or_insert(0) += 1;
                }
                _ => self.unsupported(&d.name),
            }
        }
    }

    fn unsupported(&mut self, what: &str) {
        *self
            .program
            .report
            .unsupported_directives
            .entry(what.to_string())
            .or_insert(0) += 1;
    }

    fn skip(&mut self, id: u32, file: &str, line: usize, reason: SkipReason) {
        self.program.report.skipped.push(SkippedRule {
            id,
            file: file.to_string(),
            line,
            reason,
        });
    }

    fn rule(
        &mut self,
        vars: Option<&str>,
        op: Option<&str>,
        actions: &str,
        base: &Path,
        file: &str,
        line: usize,
    ) {
        let wants_chain = lexer::split_actions(actions)
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("chain"));
        let mut unknown = Vec::new();
        let built = rule::build(vars, op, actions, base, file, line, &mut unknown);
        for a in unknown {
            *self.program.report.unknown_actions.entry(a).or_insert(0) += 1;
        }
        match built {
            Ok(mut r) => {
                r.tchain = match self.tchains.iter().position(|c| *c == r.transforms) {
                    Some(i) => i,
                    None => {
                        self.tchains.push(r.transforms.clone());
                        self.tchains.len() - 1
                    }
                };
                if self.chain_broken.is_none() {
                    self.chain.push(r);
                }
            }
            Err((id, reason)) => {
                if self.chain_broken.is_none() {
                    let id = self.chain.first().map(|h| h.id).unwrap_or(id);
                    self.chain_broken = Some(SkippedRule {
                        id,
                        file: file.to_string(),
                        line,
                        reason,
                    });
                }
                self.chain.clear();
            }
        }
        if wants_chain {
            return;
        }
        if let Some(s) = self.chain_broken.take() {
            self.program.report.skipped.push(s);
            self.chain.clear();
            return;
        }
        let mut links = std::mem::take(&mut self.chain);
        let Some(mut last) = links.pop() else { return };
        while let Some(mut prev) = links.pop() {
            prev.chain = Some(Box::new(last));
            last = prev;
        }
        let head = last;
        self.program.report.rules_loaded += 1;
        if head.phase <= 1 {
            self.program.phase1.push(Item::Rule(Box::new(head)));
        } else {
            self.program.phase2.push(Item::Rule(Box::new(head)));
        }
    }

    fn finish(mut self) -> Program {
        if let Some(s) = self.chain_broken.take() {
            self.program.report.skipped.push(s);
        }
        let edits = std::mem::take(&mut self.edits);
        for e in edits {
            match e {
                Edit::RemoveIds(ids) => self.remove(|r| rule::in_ranges(&ids, r.id)),
                Edit::RemoveTag(t) => {
                    let re = regex::Regex::new(&t).ok();
                    self.remove(|r| {
                        r.tags
                            .iter()
                            .any(|x| re.as_ref().map(|re| re.is_match(x)).unwrap_or(*x == t))
                    })
                }
                Edit::RemoveMsg(m) => {
                    let re = regex::Regex::new(&m).ok();
                    self.remove(|r| {
                        r.msg
                            .as_deref()
                            .is_some_and(|x| re.as_ref().map(|re| re.is_match(x)).unwrap_or(x == m))
                    })
                }
                Edit::UpdateTargetIds(ids, targets) => {
                    self.update_targets(|r| rule::in_ranges(&ids, r.id), &targets)
                }
                Edit::UpdateTargetTag(tag, targets) => {
                    self.update_targets(|r| r.tags.contains(&tag), &targets)
                }
            }
        }
        self.program
    }

    fn remove(&mut self, pred: impl Fn(&SecRule) -> bool) {
        for list in [&mut self.program.phase1, &mut self.program.phase2] {
            let before = list.len();
            list.retain(|i| !matches!(i, Item::Rule(r) if pred(r)));
            let gone = before - list.len();
            self.program.report.removed += gone;
            self.program.report.rules_loaded =
                self.program.report.rules_loaded.saturating_sub(gone);
        }
    }

    fn update_targets(&mut self, pred: impl Fn(&SecRule) -> bool, targets: &str) {
        let Ok(specs) = parse_vars(targets) else {
            self.unsupported(&format!("SecRuleUpdateTarget {targets}"));
            return;
        };
        for list in [&mut self.program.phase1, &mut self.program.phase2] {
            for item in list.iter_mut() {
                let Item::Rule(r) = item else { continue };
                if !pred(r) {
                    continue;
                }
                for s in &specs {
                    if s.exclude {
                        r.excludes.push(s.clone());
                    } else {
                        r.vars.push(s.clone());
                    }
                }
            }
        }
    }
}
