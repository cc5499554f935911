//! [`MockGateway`] (feature `testing`): a scripted platform that records every
//! call, for tests of the publish queue.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use nexiom_core::{Channel, Content, Credentials, SecretString};

use super::gateway::{PublishFailure, PublishGateway, PublishedPost};

/// What the mock does on one publish call.
#[derive(Debug, Clone, PartialEq)]
pub enum MockStep {
    /// Creates the post and answers with it.
    Succeed,
    /// Answers with this failure; nothing is created.
    Fail(PublishFailure),
    /// Creates the post (when `created`), then answers `Ambiguous`, as a timeout
    /// after the request was sent would.
    TimeoutAfterSend {
        /// Whether the platform did create the post.
        created: bool,
    },
    /// Creates the post, then never answers (the caller's task hangs until it
    /// is aborted): a worker that dies mid-publish.
    HangAfterSend,
    /// Answers `Ambiguous`; the post shows on the platform only after the
    /// first lookup for it (the platform was still creating it when the
    /// caller looked).
    TimeoutThenAppear,
    /// Never answers (as `HangAfterSend`); the post shows only after the
    /// first lookup for it.
    HangThenAppear,
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<MockStep>,
    calls: Vec<String>,
    lookups: usize,
    refreshes: usize,
    refresh_failures: VecDeque<PublishFailure>,
    lookup_failures: VecDeque<PublishFailure>,
    posts: HashMap<String, PublishedPost>,
    /// References of posts created but not shown yet (`TimeoutThenAppear`).
    late: Vec<String>,
}

/// A platform in memory. Publish calls follow the script (then succeed); each
/// call's reference is logged, so a test can check that no post was published
/// twice. Lookups find the posts it created, by reference.
#[derive(Debug)]
pub struct MockGateway {
    state: Mutex<State>,
    lookup_supported: bool,
    max_text_chars: Option<usize>,
}

impl Default for MockGateway {
    fn default() -> Self {
        MockGateway::new()
    }
}

impl MockGateway {
    /// A mock that succeeds, supports lookup and takes any content.
    pub fn new() -> Self {
        MockGateway {
            state: Mutex::new(State::default()),
            lookup_supported: true,
            max_text_chars: None,
        }
    }

    /// The same mock without lookup support.
    pub fn without_lookup(mut self) -> Self {
        self.lookup_supported = false;
        self
    }

    /// The same mock refusing texts over `max` characters.
    pub fn with_max_text_chars(mut self, max: usize) -> Self {
        self.max_text_chars = Some(max);
        self
    }

    /// Queues steps for the next publish calls.
    pub fn script(&self, steps: impl IntoIterator<Item = MockStep>) {
        self.lock().script.extend(steps);
    }

    /// The next lookups fail with these failures, in order (then they
    /// answer).
    pub fn fail_lookups(&self, failures: impl IntoIterator<Item = PublishFailure>) {
        self.lock().lookup_failures.extend(failures);
    }

    /// The next token refreshes fail with these failures, in order (then
    /// they succeed).
    pub fn fail_refreshes(&self, failures: impl IntoIterator<Item = PublishFailure>) {
        self.lock().refresh_failures.extend(failures);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The reference of every publish call, in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// How many publish calls named `reference`.
    pub fn calls_for(&self, reference: &str) -> usize {
        self.lock().calls.iter().filter(|c| *c == reference).count()
    }

    /// How many lookups were made.
    pub fn lookups(&self) -> usize {
        self.lock().lookups
    }

    /// How many token refreshes were made.
    pub fn refreshes(&self) -> usize {
        self.lock().refreshes
    }

    fn create(state: &mut State, reference: &str) -> PublishedPost {
        let n = state.posts.len() + 1;
        state
            .posts
            .entry(reference.to_owned())
            .or_insert_with(|| PublishedPost {
                platform_post_id: format!("mock-{n}"),
                url: Some(format!("https://mock.example/posts/{n}")),
            })
            .clone()
    }
}

#[async_trait]
impl PublishGateway for MockGateway {
    fn refusal(&self, _channel: &Channel, content: &Content) -> Option<String> {
        match self.max_text_chars {
            Some(max) if content.char_count() > max => Some(format!(
                "the text has {} characters, the platform takes at most {max}",
                content.char_count()
            )),
            _ => None,
        }
    }

    async fn publish(
        &self,
        _channel: &Channel,
        _content: &Content,
        reference: &str,
    ) -> Result<PublishedPost, PublishFailure> {
        let step = {
            let mut state = self.lock();
            state.calls.push(reference.to_owned());
            let step = state.script.pop_front().unwrap_or(MockStep::Succeed);
            match &step {
                MockStep::Succeed => return Ok(Self::create(&mut state, reference)),
                MockStep::Fail(failure) => return Err(failure.clone()),
                MockStep::TimeoutAfterSend { created } => {
                    if *created {
                        Self::create(&mut state, reference);
                    }
                    return Err(PublishFailure::Ambiguous("timed out after 30 s".into()));
                }
                MockStep::TimeoutThenAppear => {
                    state.late.push(reference.to_owned());
                    return Err(PublishFailure::Ambiguous("timed out after 30 s".into()));
                }
                MockStep::HangAfterSend => {
                    Self::create(&mut state, reference);
                }
                MockStep::HangThenAppear => state.late.push(reference.to_owned()),
            }
            step
        };
        let _ = step;
        std::future::pending::<()>().await;
        Err(PublishFailure::Ambiguous("never answered".into()))
    }

    fn can_lookup(&self, _channel: &Channel) -> bool {
        self.lookup_supported
    }

    async fn lookup(
        &self,
        _channel: &Channel,
        _content: &Content,
        reference: &str,
        _attempted_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<PublishedPost>, PublishFailure> {
        let mut state = self.lock();
        state.lookups += 1;
        if let Some(failure) = state.lookup_failures.pop_front() {
            return Err(failure);
        }
        let found = state.posts.get(reference).cloned();
        if let Some(at) = state.late.iter().position(|r| r == reference) {
            // Not shown to this lookup; created for the next one.
            state.late.remove(at);
            Self::create(&mut state, reference);
        }
        Ok(found)
    }

    async fn refresh_credentials(&self, _channel: &Channel) -> Result<Credentials, PublishFailure> {
        let mut state = self.lock();
        state.refreshes += 1;
        if let Some(failure) = state.refresh_failures.pop_front() {
            return Err(failure);
        }
        Ok(Credentials {
            access_token: Some(SecretString::new(format!("refreshed-{}", state.refreshes))),
            ..Credentials::default()
        })
    }
}
