//! The runs a journal records, as both targets' journals (the AD import's and the Graph
//! upload's) keep them: a run is started (again, when a re-run continues it), writes to users,
//! and ends complete or not. What `photobulk runs` lists, and which run a re-run continues.

use serde::Serialize;

use crate::clock::Utc;

/// A new run id: `20261125T130501Z-<pid>-<n>`, sortable by time (both journals' runs).
pub fn new_run_id() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = Utc::now();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}-{n}",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        std::process::id()
    )
}

/// One run of a job. `E` is the journal's own record of how the last attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunInfo<E> {
    pub run: String,
    pub job: String,
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restores: Option<String>,
    /// When the first attempt started.
    pub started: String,
    /// Attempts: 1 + the times the run was continued (after a kill, Ctrl+C, a lost server).
    pub attempts: usize,
    /// `complete` (the last attempt ended, not cancelled, with no retryable failure),
    /// `interrupted` (killed: no end record) or `incomplete` (ended cancelled or with failures
    /// that may pass on a re-run). A re-run of the same job continues any run that is not
    /// complete.
    pub state: &'static str,
    /// Distinct users the run wrote to (from its intents).
    pub users: usize,
    /// How the last attempt that ended ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_end: Option<E>,
}

impl<E> RunInfo<E> {
    /// Whether a re-run of the same job continues this run.
    pub fn open(&self) -> bool {
        self.state != "complete"
    }
}

/// The runs of one journal, oldest first, built up record by record as the journal is read.
#[derive(Debug, Clone)]
pub struct Runs<E> {
    list: Vec<RunInfo<E>>,
}

impl<E> Default for Runs<E> {
    fn default() -> Self {
        Runs { list: Vec::new() }
    }
}

impl<E> Runs<E> {
    /// A `run` record: a new run, or one more attempt of a known one (interrupted until it
    /// ends).
    pub fn started(
        &mut self,
        run: String,
        job: String,
        command: String,
        restores: Option<String>,
        time: String,
    ) {
        match self.list.iter_mut().find(|r| r.run == run) {
            Some(info) => {
                info.attempts += 1;
                info.state = "interrupted";
            }
            None => self.list.push(RunInfo {
                run,
                job,
                command,
                restores,
                started: time,
                attempts: 1,
                state: "interrupted",
                users: 0,
                last_end: None,
            }),
        }
    }

    /// The first intent of a user in `run`.
    pub fn user_added(&mut self, run: &str) {
        if let Some(info) = self.list.iter_mut().find(|r| r.run == run) {
            info.users += 1;
        }
    }

    /// An `end` record of `run`: `complete` when it was not cancelled and left no retryable
    /// failure.
    pub fn ended(&mut self, run: &str, complete: bool, end: E) {
        if let Some(info) = self.list.iter_mut().find(|r| r.run == run) {
            info.state = if complete { "complete" } else { "incomplete" };
            info.last_end = Some(end);
        }
    }

    /// The newest run of `job` if it is still open (a re-run continues it).
    pub fn unfinished(&self, job: &str) -> Option<&RunInfo<E>> {
        self.list
            .iter()
            .rev()
            .find(|r| r.job == job)
            .filter(|r| r.open())
    }

    /// Whether a run with this id was ever started.
    pub fn contains(&self, run: &str) -> bool {
        self.list.iter().any(|r| r.run == run)
    }

    /// Every run, oldest first.
    pub fn list(&self) -> &[RunInfo<E>] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_stays_open_until_an_attempt_ends_complete() {
        let mut runs: Runs<u32> = Runs::default();
        let start = |runs: &mut Runs<u32>| {
            runs.started(
                "r1".into(),
                "job".into(),
                "import".into(),
                None,
                "t0".into(),
            )
        };
        start(&mut runs);
        runs.user_added("r1");
        runs.user_added("nope");
        assert_eq!(runs.unfinished("job").map(|r| r.state), Some("interrupted"));
        runs.ended("r1", false, 1);
        assert_eq!(runs.unfinished("job").map(|r| r.state), Some("incomplete"));
        start(&mut runs);
        runs.ended("r1", true, 2);
        assert!(runs.unfinished("job").is_none());
        let r = &runs.list()[0];
        assert_eq!(
            (r.attempts, r.users, r.state, r.last_end),
            (2, 1, "complete", Some(2))
        );
        assert!(runs.contains("r1") && !runs.contains("r2"));
    }
}
