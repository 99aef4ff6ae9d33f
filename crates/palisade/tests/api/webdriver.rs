//! A minimal W3C WebDriver client on reqwest, enough to drive Debian's headless
//! Chromium through `chromedriver` in the dashboard tests: sessions, navigation,
//! finding and waiting for elements, clicks, typing, scripts and screenshots. A
//! WebDriver crate would bring its own HTTP stack; these dozen calls do not need one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a wait for an element or a condition lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running chromedriver with one browser session; both end on drop.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    child: Child,
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([
        PathBuf::from("/usr/bin"),
        PathBuf::from("/usr/lib/chromium"),
    ]) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The element reference in a WebDriver answer (its one value).
fn element_id(v: &Value) -> Option<String> {
    v.as_object()?.values().next()?.as_str().map(str::to_owned)
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at 1366×768, or says why it cannot
    /// (`Err` with the reason: the caller skips the test with it).
    pub async fn start() -> Result<Browser, String> {
        let driver = find_program(&["chromedriver"]).ok_or(
            "chromedriver not found (apt-get install chromium-driver; scripts/test.sh does it)",
        )?;
        let chromium = find_program(&["chromium", "chromium-browser"])
            .ok_or("chromium not found (apt-get install chromium; scripts/test.sh does it)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        use std::os::unix::process::CommandExt as _;
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            // Its own process group, so that Chromium goes with it (see `Drop`).
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", driver.display()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let base = format!("http://127.0.0.1:{port}");
        let mut b = Browser {
            http,
            base,
            session: String::new(),
            child,
        };
        let started = Instant::now();
        loop {
            let ready = b
                .http
                .get(format!("{}/status", b.base))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            if started.elapsed() > WAIT {
                return Err("chromedriver did not answer".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1366,768", "--no-first-run"],
            },
        }}});
        let v = b.cmd(reqwest::Method::POST, "/session", Some(caps)).await?;
        b.session = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {v}"))?
            .to_owned();
        Ok(b)
    }

    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let ok = resp.status().is_success();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(format!("webdriver {path}: {}", v["value"]))
        }
    }

    async fn session_cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        self.cmd(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    /// Loads a page.
    pub async fn goto(&self, url: &str) {
        self.session_cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await
            .expect("navigate");
    }

    /// The text of the page's main area (for failure messages).
    pub async fn page_text(&self) -> String {
        self.session_cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": "return location.hash + '\\n' + document.body.innerText;", "args": []})),
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
    }

    /// Every element matching a CSS selector now.
    pub async fn find_all(&self, css: &str) -> Vec<String> {
        self.session_cmd(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .ok()
        .and_then(|v| {
            v.as_array()
                .map(|a| a.iter().filter_map(element_id).collect())
        })
        .unwrap_or_default()
    }

    /// Waits for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            if started.elapsed() > WAIT {
                let page = self.page_text().await;
                panic!("no element {css} within {WAIT:?}; the page shows:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of the element matching `css` satisfies `pred`; returns it.
    pub async fn wait_text(&self, css: &str, pred: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                last = self.text(&e).await;
                if pred(&last) {
                    return last;
                }
            }
            if started.elapsed() > WAIT {
                let page = self.page_text().await;
                panic!(
                    "{css} never had the expected text; last: {last:?}; the page shows:\n{page}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        let started = Instant::now();
        while !self.find_all(css).await.is_empty() {
            assert!(started.elapsed() < WAIT, "{css} is still there");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An element's rendered text.
    pub async fn text(&self, element: &str) -> String {
        self.session_cmd(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
    }

    /// Clicks an element, first scrolled to the middle of the window (the dashboard's
    /// header is sticky: an element just scrolled to the top edge would be under it).
    pub async fn click(&self, element: &str) {
        let _ = self
            .session_cmd(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({
                    "script": "arguments[0].scrollIntoView({block: 'center', inline: 'nearest'});",
                    "args": [{"element-6066-11e4-a52e-4f735466cecf": element}],
                })),
            )
            .await;
        self.session_cmd(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await
        .expect("click");
    }

    /// Clicks the element matching `css` once it is there.
    pub async fn click_on(&self, css: &str) {
        let e = self.wait_for(css).await;
        self.click(&e).await;
    }

    /// Types into the element matching `css` (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_for(css).await;
        let _ = self
            .session_cmd(
                reqwest::Method::POST,
                &format!("/element/{e}/clear"),
                Some(json!({})),
            )
            .await;
        self.session_cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await
        .expect("type");
    }

    /// Runs a script in the page and returns its value.
    pub async fn exec(&self, script: &str) -> Value {
        self.session_cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
        .expect("script")
    }

    /// Runs a Chrome DevTools command (chromedriver's `goog/cdp/execute`).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.session_cmd(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
        .await
        .expect("cdp")
    }

    /// Saves a PNG of the window.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let v = self
            .session_cmd(reqwest::Method::GET, "/screenshot", None)
            .await
            .expect("screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("png");
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Browser {
    /// Ends the session (Chromium exits) and chromedriver.
    pub async fn quit(self) {
        let _ = self.session_cmd(reqwest::Method::DELETE, "", None).await;
    }
}

impl Drop for Browser {
    /// chromedriver and its Chromium stop with the test, even one that failed half-way.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
