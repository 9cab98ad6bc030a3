//! The Connect pages in a real browser: headless Chromium, driven through chromedriver
//! (WebDriver, `fantoccini`), links the sandbox's two cars as a driver does and lands on a
//! partner site of the test's own; a second walk, in German, cancels. It checks what only a
//! browser checks (the CSP's `form-action` also governs the redirect after a form post; no page
//! loads anything but itself) and, on the SQLite run, takes screenshots of every step at desktop
//! and phone width into `target/connect-screenshots/`.
//!
//! Switched on by `VOLTPLAN_TEST_CHROMEDRIVER` (path to chromedriver) and
//! `VOLTPLAN_TEST_CHROMIUM` (path to Chromium); CI sets both. Without them the test says it
//! skipped and passes.

mod common;

use axum::http::Uri;
use common::*;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::future::Future;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const CHROMEDRIVER_ENV: &str = "VOLTPLAN_TEST_CHROMEDRIVER";
const CHROMIUM_ENV: &str = "VOLTPLAN_TEST_CHROMIUM";
const ONBOARDING: &str = "/api/partners/v2.0/device-onboarding";

/// How long any wait for the browser (a page, a URL, chromedriver's start) may take.
const DEADLINE: Duration = Duration::from_secs(20);
const POLL_EVERY: Duration = Duration::from_millis(50);

/// This machine's network is closed: without these Chromium waits on connections it would make
/// on its own (updates, sync, QUIC probes, first-run pages).
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Screenshot sizes: a laptop, and a phone (iPhone 12 to 15's CSS viewport).
const VIEWPORTS: [(&str, u32, u32); 2] = [("desktop", 1280, 800), ("phone", 390, 844)];

/// chromedriver and Chromium, from the environment; `None` (after saying so) when unset.
fn browser_paths() -> Option<(PathBuf, PathBuf)> {
    let path = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    match (path(CHROMEDRIVER_ENV), path(CHROMIUM_ENV)) {
        (Some(driver), Some(chromium)) => Some((driver, chromium)),
        (None, None) => {
            // Straight to stderr, past the test harness's capture, so a local run shows it.
            let _ = writeln!(
                std::io::stderr(),
                "skipped: the Connect pages in a real browser need {CHROMEDRIVER_ENV} (path to \
                 chromedriver) and {CHROMIUM_ENV} (path to Chromium); CI sets both"
            );
            None
        }
        _ => panic!("set both {CHROMEDRIVER_ENV} and {CHROMIUM_ENV}, or neither"),
    }
}

/// Polls `probe` until it gives a value, or `None` once [`DEADLINE`] has passed.
async fn poll<T, F, Fut>(mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// chromedriver in a process group of its own. Dropped, also when the test panics, it kills the
/// whole group: chromedriver and every Chromium it started (which would otherwise outlive it);
/// then the browsers' profiles are removed, with nobody writing to them any more.
struct Chromedriver {
    child: Child,
    url: String,
    profiles: Mutex<Vec<tempfile::TempDir>>,
}

impl Chromedriver {
    async fn start(path: &Path) -> Chromedriver {
        // A port the system just handed out and took back: free unless another process grabs it
        // in the moment before chromedriver binds it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let mut driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profiles: Mutex::new(Vec::new()),
        };
        let http = reqwest::Client::new();
        let status_url = format!("{}/status", driver.url);
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(exit) = driver.child.try_wait().unwrap() {
                panic!("chromedriver exited while starting: {exit}");
            }
            if let Ok(response) = http.get(&status_url).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on {status_url} within {DEADLINE:?}"
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// A fresh, empty browser profile directory.
    fn new_profile(&self) -> PathBuf {
        let profile = tempfile::Builder::new()
            .prefix("voltplan-chromium-")
            .tempdir()
            .unwrap();
        let path = profile.path().to_owned();
        self.profiles.lock().unwrap().push(profile);
        path
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group chromedriver leads
            // (`process_group(0)` made its pid the group's id); it touches no memory of ours.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

/// A chromedriver command outside the W3C set: `POST /session/{id}/{path}`.
#[derive(Debug)]
struct ChromeCommand {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for ChromeCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (reqwest::Method::POST, Some(self.body.to_string()))
    }
}

/// One Chromium session with a fresh profile.
struct Browser {
    client: Client,
    /// Where screenshots go, when this walk takes them.
    screenshots: Option<PathBuf>,
}

impl Browser {
    async fn open(driver: &Chromedriver, chromium: &Path, screenshots: Option<PathBuf>) -> Browser {
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            driver.new_profile().display()
        ));
        let capabilities: Capabilities = serde_json::from_value(json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            // The console, to see what the pages' CSP refused or what failed to load.
            "goog:loggingPrefs": {"browser": "ALL"},
        }))
        .unwrap();
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("no Chromium session from {}: {e}", driver.url));
        let browser = Browser {
            client,
            screenshots,
        };
        // Network.setExtraHTTPHeaders (the driver's language) needs the domain on.
        browser.cdp("Network.enable", json!({})).await;
        browser.set_viewport(VIEWPORTS[0].1, VIEWPORTS[0].2).await;
        browser
    }

    async fn cdp(&self, method: &str, params: Value) -> Value {
        self.client
            .issue_cmd(ChromeCommand {
                path: "goog/cdp/execute",
                body: json!({"cmd": method, "params": params}),
            })
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// The languages the browser asks for, as a driver's settings would: the sandbox's login
    /// page, which does not know the session yet, speaks the browser's language.
    async fn prefer_language(&self, accept_language: &str) {
        self.cdp(
            "Network.setExtraHTTPHeaders",
            json!({"headers": {"Accept-Language": accept_language}}),
        )
        .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap()
    }

    async fn viewport(&self) -> (i64, i64) {
        let size = self
            .script("return [window.innerWidth, window.innerHeight]")
            .await;
        (
            size[0].as_i64().unwrap_or_default(),
            size[1].as_i64().unwrap_or_default(),
        )
    }

    /// Sizes the window so that the page itself (the viewport) is `width`×`height`: headless
    /// Chromium still reserves room for window decorations, measured here and added.
    async fn set_viewport(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
        let (inner_width, inner_height) = self.viewport().await;
        let grow = |wanted: u32, inner: i64| {
            u32::try_from(i64::from(wanted) * 2 - inner).unwrap_or(wanted)
        };
        if (inner_width, inner_height) != (i64::from(width), i64::from(height)) {
            self.client
                .set_window_size(grow(width, inner_width), grow(height, inner_height))
                .await
                .unwrap();
        }
        let sized = poll(|| async {
            (self.viewport().await == (i64::from(width), i64::from(height))).then_some(())
        })
        .await;
        assert!(
            sized.is_some(),
            "no {width}×{height} viewport: {:?}",
            self.viewport().await
        );
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .send_keys(text)
            .await
            .unwrap();
    }

    /// Waits until the browser shows a fully loaded page whose URL contains `url_part` and
    /// which has an element matching `css`; returns the URL.
    async fn wait_for_page(&self, url_part: &str, css: &str) -> url::Url {
        let shown = poll(|| async {
            let url = self.client.current_url().await.ok()?;
            if !url.as_str().contains(url_part) {
                return None;
            }
            // Between two pages a script may find no document: not ready yet either.
            let ready = self
                .client
                .execute("return document.readyState", Vec::new())
                .await
                .ok()?;
            if ready != "complete" {
                return None;
            }
            self.client.find(Locator::Css(css)).await.ok()?;
            Some(url)
        })
        .await;
        match shown {
            Some(url) => url,
            None => panic!(
                "no page at …{url_part}… with {css} within {DEADLINE:?}; the browser is at {} \
                 and its console says {}",
                self.client
                    .current_url()
                    .await
                    .map_or_else(|e| e.to_string(), String::from),
                self.console().await
            ),
        }
    }

    /// The page's `<html lang>`.
    async fn lang(&self) -> String {
        self.client
            .find(Locator::Css("html"))
            .await
            .unwrap()
            .attr("lang")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// What only a browser sees: the page fetched nothing besides itself (no stylesheet, font,
    /// image or script from anywhere: the Resource Timing list also has failed loads), and the
    /// console has nothing to say (a CSP refusal, a failed load) since the last look.
    async fn assert_self_contained(&self, step: &str) {
        let fetched = self
            .script("return performance.getEntriesByType('resource').map(e => e.name)")
            .await;
        assert_eq!(fetched, json!([]), "{step}: the page fetched assets");
        assert_eq!(self.console().await, json!([]), "{step}: the console");
    }

    /// The console's messages since the last call.
    async fn console(&self) -> Value {
        self.client
            .issue_cmd(ChromeCommand {
                path: "se/log",
                body: json!({"type": "browser"}),
            })
            .await
            .unwrap()
    }

    /// Screenshots of the page at every viewport (when this walk takes them), named
    /// `{step}-{viewport}-{lang}.png`; back to the desktop size after.
    async fn screenshots(&self, step: &str, lang: &str) {
        let Some(dir) = &self.screenshots else {
            return;
        };
        for (viewport, width, height) in VIEWPORTS {
            self.set_viewport(width, height).await;
            let png = self.client.screenshot().await.unwrap();
            let path = dir.join(format!("{step}-{viewport}-{lang}.png"));
            std::fs::write(&path, png)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
        self.set_viewport(VIEWPORTS[0].1, VIEWPORTS[0].2).await;
    }
}

/// A partner's site on loopback: a page for any path, and the list of what was asked of it.
struct PartnerSite {
    origin: String,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PartnerSite {
    async fn start() -> PartnerSite {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(uri.to_string());
                axum::response::Html(
                    "<!doctype html><html lang=\"en\"><head><title>Partner</title></head>\
                     <body><h1 id=\"partner\">Back at the partner</h1></body></html>",
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        PartnerSite {
            origin,
            requests,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for PartnerSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn param(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn start_onboarding(
    s: &TestServer,
    t: &Tenant,
    user: Uuid,
    language: &str,
    partner: &PartnerSite,
) -> Value {
    let body = json!({
        "language": language,
        "price_zone_default": "DE_LU",
        "is_smart_optimization_active_default": true,
        "success_url": partner.url("/onboarding/done?customer=CUST-1"),
        "cancel_url": partner.url("/onboarding/cancelled?customer=CUST-1"),
        "user_id": user,
    });
    let (status, session) = s.post(&t.token, ONBOARDING, body).await;
    assert_eq!(status, 200, "{session}");
    session
}

/// From `authentication_url` through the brand page and the sandbox's login to the vehicles
/// page, checking and photographing each; `lang` is the session's language.
async fn walk_to_vehicles(browser: &Browser, session: &Value, email: &str, lang: &str) {
    let start = session["authentication_url"].as_str().unwrap();
    browser.client.goto(start).await.unwrap();
    browser
        .wait_for_page("/connect/onboarding/", "input[name=brand]")
        .await;
    assert_eq!(browser.lang().await, lang, "brand page");
    browser.assert_self_contained("brand page").await;
    browser.screenshots("01-brand", lang).await;
    browser.click("input[name=brand][value='sandbox:']").await;
    browser.click("button[name=action][value=continue]").await;

    browser
        .wait_for_page("/connect/sandbox/login", "input#email")
        .await;
    assert_eq!(
        browser.lang().await,
        lang,
        "login page, from Accept-Language"
    );
    browser.assert_self_contained("login page").await;
    browser.screenshots("02-login", lang).await;
    browser.type_into("input#email", email).await;
    browser.type_into("input#password", "anything").await;
    browser.click("button[name=decision][value=allow]").await;

    browser
        .wait_for_page("/vehicles", "input[name=vehicle]")
        .await;
    assert_eq!(browser.lang().await, lang, "vehicles page");
    let cars = browser
        .client
        .find_all(Locator::Css("input[name=vehicle]:checked"))
        .await
        .unwrap();
    assert_eq!(
        cars.len(),
        2,
        "the sandbox account shares two cars, both ticked"
    );
    browser.assert_self_contained("vehicles page").await;
    browser.screenshots("03-vehicles", lang).await;
}

#[tokio::test]
async fn a_driver_links_cars_in_a_real_browser() {
    let Some((chromedriver, chromium)) = browser_paths() else {
        return;
    };
    let driver = Chromedriver::start(&chromedriver).await;
    for backend in backends() {
        let screenshots = matches!(backend, Backend::Sqlite).then(|| {
            // `CARGO_TARGET_TMPDIR` is `target/tmp` (wherever the target directory is).
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .unwrap()
                .join("connect-screenshots");
            std::fs::create_dir_all(&dir).unwrap();
            dir
        });
        let (s, _sandbox) = TestServer::start_with_sandbox(&backend).await;
        let partner = PartnerSite::start().await;
        let browser = Browser::open(&driver, &chromium, screenshots).await;
        let (t, anna) = s.tenant_with_user("Utility A").await;

        // In English, connecting both cars.
        let session = start_onboarding(&s, &t, anna, "en", &partner).await;
        let session_id = id_of(&session);
        browser.prefer_language("en-GB,en;q=0.9").await;
        walk_to_vehicles(&browser, &session, "anna@example.com", "en").await;
        browser.click("button[name=action][value=connect]").await;
        let success = partner.url("/onboarding/done?customer=CUST-1");
        // Chrome holds the redirect after a form post to the page's `form-action` too: the
        // partner's origin must be in the vehicles page's CSP, or the browser stops here.
        let landed = browser.wait_for_page(&success, "#partner").await;
        assert_eq!(param(&landed, "customer").as_deref(), Some("CUST-1"));
        assert_eq!(
            param(&landed, "onboarding_session_id"),
            Some(session_id.to_string())
        );
        let object_ids: Vec<String> = param(&landed, "object_ids")
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect();
        assert_eq!(object_ids.len(), 2, "{landed}");
        assert_eq!(param(&landed, "object_id"), Some(object_ids[0].clone()));
        assert_eq!(
            browser.console().await,
            json!([]),
            "the console after the redirect to the partner"
        );
        // Besides the landing, the browser may ask the partner for its icon.
        let asked: Vec<String> = partner
            .requests()
            .into_iter()
            .filter(|path| path != "/favicon.ico")
            .collect();
        assert_eq!(
            asked.len(),
            1,
            "the partner saw only the landing: {asked:?}"
        );
        assert!(asked[0].starts_with("/onboarding/done?"), "{asked:?}");

        // The partner reads the user's two new EVs over the API.
        let (status, list) = s.get(&t.token, &evs_path(t.org_id, anna)).await;
        assert_eq!(status, 200, "{list}");
        let mut ev_ids: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|ev| ev["id"].as_str().unwrap().to_owned())
            .collect();
        ev_ids.sort();
        let mut expected = object_ids.clone();
        expected.sort();
        assert_eq!(ev_ids, expected, "{list}");
        let (_, read) = s.get(&t.token, &format!("{ONBOARDING}/{session_id}")).await;
        assert_eq!(read["status"], "completed", "{read}");

        // In German, for another user, cancelling on the vehicles page.
        let jonas = s.create_user(&t, "jonas@example.de").await;
        let session = start_onboarding(&s, &t, jonas, "de", &partner).await;
        browser.prefer_language("de-DE,de;q=0.9,en;q=0.8").await;
        walk_to_vehicles(&browser, &session, "jonas@example.de", "de").await;
        browser.click("button[name=action][value=cancel]").await;
        let cancel = partner.url("/onboarding/cancelled?customer=CUST-1");
        let landed = browser.wait_for_page(&cancel, "#partner").await;
        assert_eq!(param(&landed, "reason").as_deref(), Some("cancelled"));
        assert_eq!(
            param(&landed, "onboarding_session_id"),
            Some(id_of(&session).to_string())
        );
        assert_eq!(param(&landed, "object_ids"), None);
        let (_, read) = s
            .get(&t.token, &format!("{ONBOARDING}/{}", id_of(&session)))
            .await;
        assert_eq!(read["status"], "cancelled", "{read}");
        let (_, list) = s.get(&t.token, &evs_path(t.org_id, jonas)).await;
        assert_eq!(list, json!([]), "nothing linked for a cancelled walk");

        browser.client.close().await.unwrap();
        s.stop().await;
    }
}
