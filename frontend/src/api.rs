//! The page's calls to Pixelator's API, on the page's own origin.
//!
//! Every call answers JSON (the types of `pixelator_shared::wire`); an error answer
//! carries an [`ApiError`] body, which [`ApiFailure`] keeps so the card can show
//! the API's own words.

use std::fmt;

use js_sys::encode_uri_component;
use pixelator_shared::wire::{
    ApiError, ClientConfig, ImagePage, ImageView, UploadRequest, UploadTicket,
};
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

use crate::browser::describe;

/// Why an API call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiFailure {
    /// The API could not be reached; trying again later may help.
    Network(String),
    /// The API answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// The API's code, or the status text when the body was not an `ApiError`.
        code: String,
        /// The API's message for a person.
        message: String,
    },
    /// The API answered something the page cannot read.
    Malformed(String),
}

impl ApiFailure {
    /// Whether the same call may succeed later without changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiFailure::Network(_) => true,
            ApiFailure::Status { status, .. } => *status >= 500 || *status == 429,
            ApiFailure::Malformed(_) => false,
        }
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiFailure::Network(reason) => write!(f, "the API could not be reached ({reason})"),
            ApiFailure::Status {
                status, message, ..
            } => write!(f, "{message} (HTTP {status})"),
            ApiFailure::Malformed(reason) => write!(f, "unexpected answer from the API: {reason}"),
        }
    }
}

/// `GET /api/config`.
pub async fn config() -> Result<ClientConfig, ApiFailure> {
    call("GET", "/api/config", None).await
}

/// `POST /api/uploads`: asks where to put a file.
pub async fn request_upload(request: &UploadRequest) -> Result<UploadTicket, ApiFailure> {
    let body =
        serde_json::to_string(request).map_err(|error| ApiFailure::Malformed(error.to_string()))?;
    call("POST", "/api/uploads", Some(body)).await
}

/// `GET /api/images`: a page of the gallery, newest first.
pub async fn images(cursor: Option<&str>, limit: u32) -> Result<ImagePage, ApiFailure> {
    let mut path = format!("/api/images?limit={limit}");
    if let Some(cursor) = cursor {
        path.push_str("&cursor=");
        path.push_str(&String::from(encode_uri_component(cursor)));
    }
    call("GET", &path, None).await
}

/// `GET /api/images/{key}`: one image, `processing` until its manifest exists.
pub async fn image(key: &str) -> Result<ImageView, ApiFailure> {
    call(
        "GET",
        &image_path(key, |segment| String::from(encode_uri_component(segment))),
        None,
    )
    .await
}

/// The path of one image: the key as the rest of the path, each of its segments
/// URL-encoded, so no proxy has to pass an encoded slash.
pub fn image_path(key: &str, encode: impl Fn(&str) -> String) -> String {
    let segments: Vec<String> = key.split('/').map(encode).collect();
    format!("/api/images/{}", segments.join("/"))
}

async fn call<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<T, ApiFailure> {
    let network = |error: JsValue| ApiFailure::Network(describe(&error));

    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = &body {
        init.set_body(&JsValue::from_str(body));
    }
    let request = Request::new_with_str_and_init(path, &init).map_err(network)?;
    request
        .headers()
        .set("Accept", "application/json")
        .map_err(network)?;
    if body.is_some() {
        request
            .headers()
            .set("Content-Type", "application/json")
            .map_err(network)?;
    }
    let window = web_sys::window().ok_or_else(|| ApiFailure::Network("no window".into()))?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(network)?
        .unchecked_into();
    let text = JsFuture::from(response.text().map_err(network)?)
        .await
        .map_err(network)?
        .as_string()
        .unwrap_or_default();

    if !response.ok() {
        let status = response.status();
        return Err(match serde_json::from_str::<ApiError>(&text) {
            Ok(error) => ApiFailure::Status {
                status,
                code: error.code,
                message: error.message,
            },
            Err(_) => ApiFailure::Status {
                status,
                code: response.status_text(),
                message: format!("the API answered {}", response.status_text()),
            },
        });
    }
    serde_json::from_str(&text).map_err(|error| ApiFailure::Malformed(error.to_string()))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn an_image_path_keeps_the_keys_folders_and_encodes_the_rest() {
        let encode = |segment: &str| {
            segment
                .replace(' ', "%20")
                .replace('(', "%28")
                .replace(')', "%29")
        };
        assert_eq!(
            image_path("uploads/0a1b/summer trip (1).jpg", encode),
            "/api/images/uploads/0a1b/summer%20trip%20%281%29.jpg"
        );
    }
}
