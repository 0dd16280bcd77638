//! Bounded concurrency with results in input order, for the jobs that run one future per
//! input (cloud upload, Exchange hand-off, sync-HD).

use std::future::Future;

use futures_util::stream::{Stream, StreamExt};

/// Run the futures of `work`, at most `workers` (at least one) at a time, and return their
/// outputs in the order `work` gave them. A slow item does not hold back the ones after it
/// (unlike `StreamExt::buffered`): they finish, and are put back in order at the end.
pub(crate) async fn in_input_order<S>(work: S, workers: usize) -> Vec<<S::Item as Future>::Output>
where
    S: Stream,
    S::Item: Future,
{
    let mut done: Vec<(usize, _)> = work
        .enumerate()
        .map(|(n, job)| async move { (n, job.await) })
        .buffer_unordered(workers.max(1))
        .collect()
        .await;
    done.sort_by_key(|(n, _)| *n);
    done.into_iter().map(|(_, out)| out).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn outputs_come_back_in_input_order_whatever_order_they_finish() {
        // Each job yields to the others this many times before it finishes (no clock).
        let yields = [30usize, 0, 20, 5, 10];
        let finished = Mutex::new(Vec::new());
        let finished_ref = &finished;
        let work =
            futures_util::stream::iter(yields.iter().enumerate().map(|(i, &k)| async move {
                for _ in 0..k {
                    tokio::task::yield_now().await;
                }
                finished_ref.lock().expect("lock").push(i);
                i
            }));
        assert_eq!(in_input_order(work, 3).await, vec![0, 1, 2, 3, 4]);
        let order = finished.lock().expect("lock").clone();
        assert_ne!(
            order,
            vec![0, 1, 2, 3, 4],
            "they finished out of order: {order:?}"
        );
        let none = futures_util::stream::iter(Vec::<std::future::Ready<u8>>::new());
        assert!(in_input_order(none, 0).await.is_empty());
    }
}
