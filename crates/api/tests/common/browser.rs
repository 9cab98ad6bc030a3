//! A browser-like HTTP client for the Connect pages: it keeps cookies, sends `Origin` on form
//! posts as a browser does, follows redirects one by one (so a test sees where each goes), and
//! fills and submits HTML forms read with a real HTML parser (`scraper`).

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use scraper::{Html, Selector};

pub struct Browser {
    pub http: reqwest::Client,
}

/// A fetched page.
#[derive(Debug, Clone)]
pub struct Page {
    pub url: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// Where a redirect points, resolved against this page's URL.
    pub fn location(&self) -> Option<String> {
        let location = self.headers.get(LOCATION)?.to_str().ok()?;
        let base = url::Url::parse(&self.url).ok()?;
        Some(base.join(location).ok()?.to_string())
    }

    pub fn is_redirect(&self) -> bool {
        self.status.is_redirection()
    }

    /// The form containing a submit button with this name and value (or the first form), with
    /// the values a browser would send by default: hidden, text and checked inputs.
    pub fn form(&self, button: Option<(&str, &str)>) -> Form {
        let html = Html::parse_document(&self.body);
        let forms = Selector::parse("form").unwrap();
        let inputs = Selector::parse("input").unwrap();
        let buttons = Selector::parse("button").unwrap();
        let form = html
            .select(&forms)
            .find(|form| {
                button.is_none_or(|(name, value)| {
                    form.select(&buttons).any(|b| {
                        b.value().attr("name") == Some(name)
                            && b.value().attr("value") == Some(value)
                    })
                })
            })
            .unwrap_or_else(|| panic!("no form with button {button:?} in {}", self.body));
        let action = form.value().attr("action").unwrap_or("");
        let action = url::Url::parse(&self.url)
            .unwrap()
            .join(action)
            .unwrap()
            .to_string();
        let mut fields = Vec::new();
        for input in form.select(&inputs) {
            let v = input.value();
            let (Some(name), kind) = (v.attr("name"), v.attr("type").unwrap_or("text")) else {
                continue;
            };
            let value = v.attr("value").unwrap_or("").to_owned();
            match kind {
                "checkbox" | "radio" => {
                    if v.attr("checked").is_some() {
                        fields.push((name.to_owned(), value));
                    }
                }
                _ => fields.push((name.to_owned(), value)),
            }
        }
        if let Some((name, value)) = button {
            fields.push((name.to_owned(), value.to_owned()));
        }
        let options = form
            .select(&inputs)
            .filter(|i| matches!(i.value().attr("type"), Some("checkbox" | "radio")))
            .filter_map(|i| {
                Some((
                    i.value().attr("name")?.to_owned(),
                    i.value().attr("value")?.to_owned(),
                ))
            })
            .collect();
        Form {
            action,
            fields,
            options,
        }
    }
}

/// A form ready to submit.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
    /// Every checkbox and radio button: (name, value).
    pub options: Vec<(String, String)>,
}

impl Form {
    /// Sets a field (replacing every value it had).
    pub fn set(mut self, name: &str, value: &str) -> Form {
        self.fields.retain(|(n, _)| n != name);
        self.fields.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Leaves a field out.
    pub fn unset(mut self, name: &str) -> Form {
        self.fields.retain(|(n, _)| n != name);
        self
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn page(response: reqwest::Response) -> Page {
        Page {
            url: response.url().to_string(),
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        Self::page(self.http.get(url).send().await.unwrap()).await
    }

    /// Posts the form as a browser does from a page of `form.action`'s origin.
    pub async fn submit(&self, form: &Form) -> Page {
        let origin = url::Url::parse(&form.action)
            .unwrap()
            .origin()
            .ascii_serialization();
        self.submit_from(form, &origin).await
    }

    /// Posts the form as if a page of `origin` sent it.
    pub async fn submit_from(&self, form: &Form, origin: &str) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.fields.iter())
            .finish();
        let response = self
            .http
            .post(&form.action)
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        Self::page(response).await
    }

    /// Follows redirects from `page` until one leaves for a URL starting with `stop_at` (the
    /// partner's site, which does not exist here): returns the last page and, if it stopped
    /// there, that URL.
    pub async fn follow(&self, mut page: Page, stop_at: &str) -> (Page, Option<String>) {
        for _ in 0..10 {
            if !page.is_redirect() {
                return (page, None);
            }
            let next = page.location().expect("a redirect without Location");
            if next.starts_with(stop_at) {
                return (page, Some(next));
            }
            page = self.get(&next).await;
        }
        panic!("too many redirects");
    }
}
