//! [`OpenAiCompatibleGenerator`]: drafts from an OpenAI-compatible
//! chat-completions endpoint (OpenRouter, OpenAI, a local server…).
//!
//! The answer's body is read up to a cap
//! ([`OpenAiConfig::max_response_bytes`]); an error body is kept only as a
//! short excerpt with the API key, `Bearer …` values, `sk-…` keys and the
//! customer's text taken out, since endpoints echo requests in their errors.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use nexiom_core::{ReplySettings, SecretString};
use regex::Regex;
use serde::Deserialize;
use serde_json::json;

use super::{Draft, ReplyError, ReplyGenerator, ReplyKind, ReplyRequest, clean_confidence};

/// OpenRouter's API root, the default base URL.
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://openrouter.ai/api/v1";

/// How long a draft may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of an error body kept in [`ReplyError::Status`].
const MAX_ERROR_BODY: usize = 300;

/// The default cap on an answer's body: 1 MiB. A chat completion holding one
/// short reply is a few kilobytes; the cap only stops a broken or hostile
/// endpoint from filling memory.
pub const DEFAULT_OPENAI_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The instructions sent with every item, unless replaced.
const DEFAULT_SYSTEM_PROMPT: &str = "You answer customers of a business on social media, \
     in the language of their message, briefly and politely. Answer with a JSON object \
     only: {\"reply\": \"<your answer>\", \"confidence\": <a number between 0 and 1 saying \
     how sure you are that the answer is right and needs no human>}.";

/// Where and how to call the endpoint. The API key is a [`SecretString`]: it is
/// sent only in the `Authorization` header and never appears in `Debug`
/// output or errors.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// API root; `/chat/completions` is appended. Default [`DEFAULT_OPENAI_BASE_URL`].
    pub base_url: String,
    /// Bearer token (setting `OPENROUTER_API_KEY`).
    pub api_key: SecretString,
    /// Model name (setting `NEXIOM_DEFAULT_CHAT_MODEL`).
    pub model: String,
    /// Request timeout (default 30 s).
    pub timeout: Duration,
    /// The system prompt; the default asks for `{"reply", "confidence"}` JSON.
    pub system_prompt: String,
    /// The largest answer body read, in bytes (default
    /// [`DEFAULT_OPENAI_MAX_RESPONSE_BYTES`]); a larger one is [`ReplyError::TooLarge`].
    pub max_response_bytes: usize,
}

impl OpenAiConfig {
    /// The default endpoint with this key and model.
    pub fn new(api_key: SecretString, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: DEFAULT_OPENAI_BASE_URL.to_owned(),
            api_key,
            model: model.into(),
            timeout: DEFAULT_TIMEOUT,
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_owned(),
            max_response_bytes: DEFAULT_OPENAI_MAX_RESPONSE_BYTES,
        }
    }

    /// Another API root (a mock server in tests, another provider).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Another timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Another cap on the answer's body, in bytes.
    pub fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }
}

/// Drafts replies with a chat-completions call per item.
///
/// The model is asked for `{"reply": …, "confidence": …}`; an answer that is
/// plain text is still a draft, with no confidence (so a rule with
/// `confidence_min` escalates it). Every failure (unreachable endpoint, error
/// status, unusable answer) is a [`ReplyError`]; the pipeline escalates the
/// item with it as the reason.
#[derive(Debug, Clone)]
pub struct OpenAiCompatibleGenerator {
    config: OpenAiConfig,
    endpoint: String,
    client: reqwest::Client,
}

impl OpenAiCompatibleGenerator {
    /// A generator for `config`. `NotConfigured` when the key or the model is
    /// empty, or the HTTP client cannot be built.
    pub fn new(config: OpenAiConfig) -> Result<Self, ReplyError> {
        if config.api_key.is_empty() {
            return Err(ReplyError::NotConfigured(
                "the API key (OPENROUTER_API_KEY) is empty".into(),
            ));
        }
        if config.model.trim().is_empty() {
            return Err(ReplyError::NotConfigured(
                "the model (NEXIOM_DEFAULT_CHAT_MODEL) is empty".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| ReplyError::NotConfigured(format!("HTTP client: {e}")))?;
        let endpoint = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        Ok(OpenAiCompatibleGenerator {
            config,
            endpoint,
            client,
        })
    }

    /// The model it asks.
    pub fn model(&self) -> &str {
        &self.config.model
    }
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    reply: String,
    #[serde(default)]
    confidence: Option<f64>,
}

/// The draft in a model's answer: the JSON object asked for (also inside a
/// fenced code block), or else the text itself with no confidence.
fn parse_answer(content: &str) -> Result<Draft, ReplyError> {
    let trimmed = content.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|s| s.strip_suffix("```"))
        .map_or(trimmed, str::trim);
    let draft = match serde_json::from_str::<Answer>(unfenced) {
        Ok(answer) => Draft {
            text: answer.reply.trim().to_owned(),
            confidence: clean_confidence(answer.confidence),
        },
        Err(_) => Draft {
            text: trimmed.to_owned(),
            confidence: None,
        },
    };
    if draft.text.is_empty() {
        return Err(ReplyError::Malformed("the reply is empty".into()));
    }
    Ok(draft)
}

/// Reads at most `limit` bytes of the body: `(body, true)` when it was read
/// whole, `(the first limit bytes, false)` when it is larger. A
/// `Content-Length` over the limit is refused before reading anything.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let max = u64::try_from(limit).unwrap_or(u64::MAX);
    if response.content_length().is_some_and(|n| n > max) {
        return Ok((Vec::new(), false));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(chunk.get(..room).unwrap_or_default());
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

/// `Bearer <anything>` and `sk-…` API keys (OpenAI, OpenRouter `sk-or-…`).
static TOKEN_PATTERNS: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"(?i)\bbearer\s+[^\s"',;]+|\bsk-[A-Za-z0-9_\-]{6,}"#).ok());

/// The part of an error body read for an excerpt: far more than the
/// excerpt keeps, so that a secret or a text that begins inside the excerpt
/// is whole when it is replaced.
const ERROR_BODY_READ: usize = 16 * 1024;

/// An error body made safe for a log or an error message: the exact
/// `secrets` (6 characters or more), anything that looks like a bearer
/// token or an `sk-` key, and the customers' `texts` (those of 8 characters
/// or more, as sent and as a JSON string escapes them, as an endpoint
/// echoing its request shows them) are replaced, then the rest is cut to
/// 300 bytes. For a client of a model's API that must keep its key and its
/// customers' words out of its errors and logs.
pub fn error_excerpt(body: &[u8], secrets: &[&str], texts: &[&str]) -> String {
    let mut end = body.len().min(ERROR_BODY_READ);
    // Whole UTF-8 characters (at most 3 bytes of one are cut off).
    while end > 0 && end < body.len() && (body[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    let mut out = String::from_utf8_lossy(&body[..end]).trim().to_owned();
    for secret in secrets {
        if secret.len() >= 6 {
            out = out.replace(secret, "[redacted]");
        }
    }
    if let Some(patterns) = TOKEN_PATTERNS.as_ref() {
        out = patterns.replace_all(&out, "[redacted]").into_owned();
    }
    for text in texts {
        let text = text.trim();
        if text.len() < 8 {
            continue;
        }
        out = out.replace(text, "[message]");
        if let Ok(quoted) = serde_json::to_string(text) {
            let escaped = &quoted[1..quoted.len() - 1];
            if escaped != text {
                out = out.replace(escaped, "[message]");
            }
            // As a server that also escapes `<`, `>` and `&` writes it (Go's
            // encoding/json does), and one that writes ASCII only (Python's
            // json.dumps by default: `\u00e9`, surrogate pairs past U+FFFF).
            if escaped.contains(['<', '>', '&']) {
                let html = escaped
                    .replace('<', "\\u003c")
                    .replace('>', "\\u003e")
                    .replace('&', "\\u0026");
                out = out.replace(&html, "[message]");
            }
            if !escaped.is_ascii() {
                let mut ascii = String::with_capacity(escaped.len() * 2);
                for c in escaped.chars() {
                    if c.is_ascii() {
                        ascii.push(c);
                    } else {
                        let mut units = [0u16; 2];
                        for unit in c.encode_utf16(&mut units) {
                            ascii.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                }
                out = out.replace(&ascii, "[message]");
            }
        }
    }
    truncate(&out, MAX_ERROR_BODY)
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[async_trait]
impl ReplyGenerator for OpenAiCompatibleGenerator {
    async fn generate(&self, request: &ReplyRequest<'_>) -> Result<Draft, ReplyError> {
        self.complete(request, &ReplySettings::default()).await
    }

    async fn generate_with(
        &self,
        request: &ReplyRequest<'_>,
        settings: &ReplySettings,
    ) -> Result<Draft, ReplyError> {
        self.complete(request, settings).await
    }
}

/// The answer format every system prompt ends with (a tenant's prompt sets
/// the tone and content; the library still needs this JSON back).
const ANSWER_FORMAT: &str = "Answer with a JSON object only: {\"reply\": \"<your answer>\", \
     \"confidence\": <a number between 0 and 1 saying how sure you are that the answer is \
     right and needs no human>}.";

/// The temperature when neither the tenant nor the configuration sets one.
const DEFAULT_TEMPERATURE: f64 = 0.2;

impl OpenAiCompatibleGenerator {
    /// The system prompt for `settings`: the tenant's prompt followed by the
    /// answer format, or the configured one; and the language to answer in.
    fn system_prompt(&self, settings: &ReplySettings) -> String {
        let mut prompt = match &settings.prompt {
            Some(p) => format!("{}\n\n{ANSWER_FORMAT}", p.trim()),
            None => self.config.system_prompt.clone(),
        };
        if let Some(language) = &settings.language {
            prompt.push_str(&format!(
                "\nWrite the reply in the language tagged {language:?} (BCP 47)."
            ));
        }
        prompt
    }

    async fn complete(
        &self,
        request: &ReplyRequest<'_>,
        settings: &ReplySettings,
    ) -> Result<Draft, ReplyError> {
        let what = match request.kind {
            ReplyKind::Message => "direct message",
            ReplyKind::Comment => "public comment on one of our posts",
        };
        let user = format!(
            "A {what} from {}:\n{}",
            request.contact_name.unwrap_or("a customer"),
            request.text
        );
        let body = json!({
            "model": settings.model.as_deref().unwrap_or(&self.config.model),
            "messages": [
                {"role": "system", "content": self.system_prompt(settings)},
                {"role": "user", "content": user},
            ],
            "temperature": settings.temperature.unwrap_or(DEFAULT_TEMPERATURE),
        });
        let response = self
            .client
            .post(&self.endpoint)
            .bearer_auth(self.config.api_key.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| ReplyError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        let limit = self.config.max_response_bytes;
        let (body, whole) = read_capped(response, limit)
            .await
            .map_err(|e| ReplyError::Transport(e.without_url().to_string()))?;
        if !status.is_success() {
            // An error body over the cap is still worth its first bytes.
            return Err(ReplyError::Status {
                status: status.as_u16(),
                message: error_excerpt(&body, &[self.config.api_key.expose()], &[request.text]),
            });
        }
        if !whole {
            return Err(ReplyError::TooLarge { limit_bytes: limit });
        }
        let completion: Completion = serde_json::from_slice(&body)
            .map_err(|e| ReplyError::Malformed(format!("not a chat completion: {e}")))?;
        let content = completion
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| ReplyError::Malformed("no choice with content".into()))?;
        parse_answer(&content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_json_fenced_or_plain() {
        let d = parse_answer(r#"{"reply": " Bonjour ! ", "confidence": 0.8}"#).expect("json");
        assert_eq!((d.text.as_str(), d.confidence), ("Bonjour !", Some(0.8)));
        let d =
            parse_answer("```json\n{\"reply\": \"Hi\", \"confidence\": 7}\n```").expect("fenced");
        assert_eq!((d.text.as_str(), d.confidence), ("Hi", None));
        let d = parse_answer("Just text").expect("plain");
        assert_eq!((d.text.as_str(), d.confidence), ("Just text", None));
        assert!(matches!(parse_answer("  "), Err(ReplyError::Malformed(_))));
        assert!(matches!(
            parse_answer(r#"{"reply": "", "confidence": 1}"#),
            Err(ReplyError::Malformed(_))
        ));
        assert_eq!(truncate("ééé", 3), "é…");
    }

    #[test]
    fn error_excerpts_hold_no_key_no_token_no_message() {
        let key = "sk-or-v1-0123456789abcdef";
        let customer = "Mon numéro de carte est 4970 1234";
        let body = format!(
            r#"{{"error":{{"message":"Invalid key {key}","request":{{"headers":{{"Authorization":"Bearer {key}","X-Other":"bearer abc.def-ghi"}},"messages":[{{"content":"{customer}"}}]}},"note":"try sk-proj-ZZZZZZZZ or SK-LIVE-1234567"}}}}{}"#,
            " ".repeat(5000)
        );
        let out = error_excerpt(body.as_bytes(), &[key], &[customer]);
        assert!(!out.contains(key), "{out}");
        assert!(!out.contains("0123456789abcdef"), "{out}");
        assert!(!out.contains("abc.def-ghi"), "{out}");
        assert!(!out.contains("ZZZZZZZZ"), "{out}");
        assert!(!out.contains("4970 1234"), "{out}");
        assert!(
            out.len() <= MAX_ERROR_BODY + '…'.len_utf8(),
            "{}",
            out.len()
        );
        assert!(out.contains("Invalid key [redacted]"), "{out}");
        // A long body is cut, and a short harmless one kept as is.
        let long = error_excerpt("x".repeat(10_000).as_bytes(), &[key], &[]);
        assert_eq!(long.len(), MAX_ERROR_BODY + '…'.len_utf8());
        assert_eq!(
            error_excerpt(b" No auth credentials found ", &[key], &["hi"]),
            "No auth credentials found"
        );
        // A request echoed as JSON: the text as a JSON string escapes it.
        let text = "Mon \"code\" 4970\nmerci";
        let echoed = serde_json::json!({"error": {"request": {"content": text}}}).to_string();
        let out = error_excerpt(echoed.as_bytes(), &[], &[text]);
        assert!(!out.contains("4970"), "{out}");
        assert!(out.contains("[message]"), "{out}");
        // As Go's encoding/json escapes it (`<`, `>`, `&` as \u003c…).
        let text = "Commande <4970> & retard";
        let go = r#"{"error":{"content":"Commande \u003c4970\u003e \u0026 retard"}}"#;
        let out = error_excerpt(go.as_bytes(), &[], &[text]);
        assert!(!out.contains("4970"), "{out}");
        // As Python's json.dumps writes it (ASCII only).
        let text = "Commande n°4970 livrée 😀";
        let ascii = r#"{"detail":"Commande n\u00b04970 livr\u00e9e \ud83d\ude00"}"#;
        let out = error_excerpt(ascii.as_bytes(), &[], &[text]);
        assert!(!out.contains("4970"), "{out}");
    }

    #[test]
    fn refuses_an_empty_key_or_model() {
        let empty_key = OpenAiConfig::new(SecretString::new(""), "m");
        assert!(matches!(
            OpenAiCompatibleGenerator::new(empty_key),
            Err(ReplyError::NotConfigured(_))
        ));
        let no_model = OpenAiConfig::new(SecretString::new("k"), " ");
        assert!(matches!(
            OpenAiCompatibleGenerator::new(no_model),
            Err(ReplyError::NotConfigured(_))
        ));
    }
}
