//! The browser-like HTTP client for the server's pages: keeps cookies,
//! follows no redirects, fills forms with their CSRF token.

use reqwest::{StatusCode, header};

use super::{ADMIN_PASSWORD, TestApp};

/// A browser-like client: keeps cookies, does not follow redirects.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Page {
    /// Asserts the status, so a check for what a page does not show cannot
    /// pass on an error page.
    #[track_caller]
    pub fn expect(&self, status: StatusCode, what: &str) -> &Self {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        self
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The first form's CSRF token on the page.
    pub fn csrf(&self) -> String {
        between(&self.body, r#"name="csrf" value=""#, "\"")
            .unwrap_or_else(|| panic!("no CSRF field in page:\n{}", self.body))
    }

    /// The secret on a shown-once page.
    pub fn secret(&self) -> String {
        between(
            &self.body,
            r#"<code id="secret" class="secret">"#,
            "</code>",
        )
        .unwrap_or_else(|| panic!("no secret in page:\n{}", self.body))
    }
}

impl Page {
    /// The one-time nonce of the form posting to `action`, if it has one.
    pub fn nonce(&self, action: &str) -> Option<String> {
        let at = self.body.find(&format!(r#"action="{action}""#))?;
        let form = &self.body[at..];
        let form = &form[..form.find("</form>").unwrap_or(form.len())];
        between(form, r#"name="nonce" value=""#, "\"")
    }
}

pub fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let i = text.find(start)? + start.len();
    let j = text[i..].find(end)? + i;
    Some(text[i..j].to_owned())
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self::at(&app.url(""))
    }

    /// A browser for the server at `base` (`http://host:port`). Cookies
    /// ignore the port, so a session made here is sent to every instance on
    /// the same host.
    pub fn at(base: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("client"),
            base: base.to_owned(),
        }
    }

    pub async fn page(res: reqwest::Response) -> Page {
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.expect("body"),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        Self::page(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, &[]).await
    }

    /// A POST with request headers of a browser's (`Origin`, `Sec-Fetch-Site`).
    pub async fn post_with(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self.client.post(format!("{}{path}", self.base)).form(form);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Self::page(req.send().await.expect("POST")).await
    }

    /// GETs `form_page`, then POSTs `form` (plus its CSRF token and, when the
    /// form has one, its one-time nonce) to `action`.
    pub async fn submit(&self, form_page: &str, action: &str, form: &[(&str, &str)]) -> Page {
        let page = self.get(form_page).await;
        let csrf = page.csrf();
        let nonce = page.nonce(action);
        let mut fields = vec![("csrf", csrf.as_str())];
        if let Some(n) = &nonce {
            fields.push(("nonce", n.as_str()));
        }
        fields.extend_from_slice(form);
        self.post(action, &fields).await
    }

    /// Follows a 303 (as a browser does after a POST) and returns the page.
    pub async fn follow(&self, res: &Page) -> Page {
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        self.get(res.location()).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Page {
        self.submit(
            "/login",
            "/login",
            &[("username", username), ("password", password)],
        )
        .await
    }

    pub async fn signed_in(app: &TestApp, username: &str) -> Self {
        let b = Self::new(app);
        let res = b.login(username, ADMIN_PASSWORD).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        assert_eq!(res.location(), "/");
        b
    }

    /// Creates a personal token through the form; returns (secret, token id).
    pub async fn create_token(&self, name: &str, scopes: &[&str]) -> (String, String) {
        let mut form = vec![("name", name), ("lifetime", "30")];
        for s in scopes {
            form.push(("scopes", s));
        }
        let res = self.submit("/tokens/new", "/tokens/new", &form).await;
        let page = self.follow(&res).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let id = between(&page.body, r#"href="/tokens/"#, "\"").expect("token link");
        (page.secret(), id)
    }
}
