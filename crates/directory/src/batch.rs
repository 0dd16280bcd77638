//! Lookups that arrive together go to the server together.
//!
//! A bulk job looks users up from many tasks at once, one name each. [`LookupBatcher::find`]
//! takes one of those lookups; while a search is out, the lookups that arrive queue up, and
//! the next search asks for all of them ([`Directory::find_users`]: one subtree search per
//! [`crate::FIND_USERS_CHUNK`] names). No timer and no waiting for a batch to fill: a lookup
//! that finds no search out goes at once, alone if it is alone, so a single lookup costs what
//! it did, and a busy job sends batches as large as its window.
//!
//! Every answer is the one [`Directory::find_user`] would give for that name.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::client::{Directory, User};
use crate::filter::Lookup;
use crate::DirectoryError;

type Answer = Result<User, DirectoryError>;

struct Waiting {
    by: Lookup,
    value: String,
    with_photo: bool,
    answer: oneshot::Sender<Answer>,
}

/// Gathers concurrent [`LookupBatcher::find`] calls into shared searches. One per job; it
/// holds no connection (each call names its [`Directory`]).
#[derive(Default)]
pub struct LookupBatcher {
    waiting: Mutex<Vec<Waiting>>,
    /// Held by the task that is sending a batch; the others wait here for their answer or
    /// their turn.
    sending: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LookupBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookupBatcher").finish_non_exhaustive()
    }
}

impl LookupBatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// What `dir.find_user(by, value, with_photo)` answers, sent in a batch with the lookups
    /// of other tasks that are waiting at the same time.
    pub async fn find(
        &self,
        dir: &Directory,
        by: &Lookup,
        value: &str,
        with_photo: bool,
    ) -> Result<User, DirectoryError> {
        let (tx, mut rx) = oneshot::channel();
        self.lock_waiting().push(Waiting {
            by: by.clone(),
            value: value.to_string(),
            with_photo,
            answer: tx,
        });
        loop {
            let turn = self.sending.lock().await;
            match rx.try_recv() {
                // Whoever sent before us took this lookup into its batch and answered it.
                Ok(answer) => return answer,
                // The task that took it was dropped (cancelled) before answering: ask alone.
                Err(oneshot::error::TryRecvError::Closed) => {
                    drop(turn);
                    return dir.find_user(by, value, with_photo).await;
                }
                // Still waiting: send it, with everything else that is.
                Err(oneshot::error::TryRecvError::Empty) => {
                    let batch = std::mem::take(&mut *self.lock_waiting());
                    send(dir, batch).await;
                }
            }
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Answer every waiting lookup: one `find_users` per kind of lookup and photo choice.
async fn send(dir: &Directory, mut batch: Vec<Waiting>) {
    while !batch.is_empty() {
        let (by, with_photo) = (batch[0].by.clone(), batch[0].with_photo);
        let (group, rest): (Vec<Waiting>, Vec<Waiting>) = batch
            .into_iter()
            .partition(|w| w.by == by && w.with_photo == with_photo);
        batch = rest;
        let values: Vec<String> = group.iter().map(|w| w.value.clone()).collect();
        let answers = dir.find_users(&by, &values, with_photo).await;
        for (w, a) in group.into_iter().zip(answers) {
            let _ = w.answer.send(a);
        }
    }
}
