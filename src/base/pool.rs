//! A pool of threads that grows with the work: a dispatcher hands each job to a free thread,
//! starting another when none is free (up to a bound); threads beyond the first end after a
//! quiet period. Used by the Helix workers and the chat dialers. Waits on channels; no I/O of
//! its own.

use std::collections::HashMap;
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use crossbeam_channel::{select, Receiver, TrySendError};
use log::error;

use crate::base::backoff::BackoffPolicy;
use crate::base::stop::StopSignal;
use crate::base::supervisor::{spawn_supervised, ThreadSpec};

/// How a pool's threads are started and when they end.
#[derive(Clone, Debug)]
pub struct PoolSpec {
    /// Thread names are `<name>-<n>`.
    pub name: &'static str,
    /// At most this many threads run at once; beyond it jobs wait for the first one free.
    pub max_threads: usize,
    /// A thread beyond the first ends after this long without a job.
    pub idle_end: Duration,
    pub stack_size: usize,
    /// Whether the pool ends when the stop signal fires. Otherwise it ends only when every
    /// sender of its jobs is gone, so that jobs filed before the stop are still done.
    pub end_on_stop: bool,
}

/// Runs the pool until every sender of `jobs` is dropped (or `stop` fires, if the spec says
/// so), then ends the threads and joins them. Each job goes to a free thread, or to a new one when all are busy, so that a job
/// that takes long never holds up the next. `work` runs one job; a panic in it is caught
/// and logged by the thread's supervisor, and the thread goes on.
pub fn run_pool<J: Send + 'static>(
    jobs: Receiver<J>,
    spec: &PoolSpec,
    stop: &StopSignal,
    work: impl Fn(J) + Clone + Send + 'static,
) {
    // Zero capacity: a hand-over succeeds only when a thread is waiting for a job.
    let (hand_over, taken) = crossbeam_channel::bounded::<J>(0);
    let (ended_sender, ended) = crossbeam_channel::unbounded::<ThreadId>();
    let mut threads: HashMap<ThreadId, JoinHandle<()>> = HashMap::new();
    let mut n_started = 0usize;
    let mut start_thread = |threads: &mut HashMap<ThreadId, JoinHandle<()>>| {
        // The first thread stays for good, so an idle daemon never starts threads.
        let resident = threads.is_empty();
        let name = format!("{}-{n_started}", spec.name);
        let thread_spec = ThreadSpec {
            name: name.clone(),
            what: name,
            stack_size: spec.stack_size,
            policy: BackoffPolicy::default(),
        };
        n_started += 1;
        let taken = taken.clone();
        let work = work.clone();
        let idle_end = spec.idle_end;
        match spawn_supervised(thread_spec, stop.clone(), ended_sender.clone(), move || {
            serve(&taken, resident, idle_end, &work)
        }) {
            Ok(handle) => {
                threads.insert(handle.thread().id(), handle);
            }
            Err(error) => error!("cannot start a {} thread: {error}", spec.name),
        }
    };
    start_thread(&mut threads);
    let never = crossbeam_channel::never();
    let stopped = if spec.end_on_stop {
        stop.receiver()
    } else {
        &never
    };
    loop {
        select! {
            recv(stopped) -> _ => break,
            recv(jobs) -> job => {
                let Ok(job) = job else { break };
                let job = match hand_over.try_send(job) {
                    Ok(()) => continue,
                    Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => job,
                };
                if threads.len() < spec.max_threads {
                    start_thread(&mut threads);
                }
                // A new thread takes it at once; at the bound, the first one free does.
                if hand_over.send(job).is_err() {
                    break;
                }
            },
            recv(ended) -> id => {
                if let Some(handle) = id.ok().and_then(|id| threads.remove(&id)) {
                    join(handle);
                }
            },
        }
    }
    drop(hand_over);
    for (_, handle) in threads {
        join(handle);
    }
}

fn join(handle: JoinHandle<()>) {
    let name = handle.thread().name().unwrap_or("pool thread").to_string();
    if handle.join().is_err() {
        error!("thread {name} had panicked");
    }
}

/// One pool thread: runs jobs until the dispatcher ends, or, unless `resident`, until it had
/// no job for `idle_end`.
fn serve<J>(jobs: &Receiver<J>, resident: bool, idle_end: Duration, work: &impl Fn(J)) {
    loop {
        let job = if resident {
            jobs.recv().ok()
        } else {
            // Idle too long, or the dispatcher ended: either way this thread ends.
            jobs.recv_timeout(idle_end).ok()
        };
        let Some(job) = job else { return };
        work(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn spec(max_threads: usize) -> PoolSpec {
        PoolSpec {
            name: "test-pool",
            max_threads,
            idle_end: Duration::from_secs(60),
            stack_size: 64 * 1024,
            end_on_stop: false,
        }
    }

    /// Three jobs that each wait for the other two run on three threads at once: a busy
    /// thread never holds up the next job.
    #[test]
    fn a_busy_thread_does_not_hold_up_the_next_job() {
        let (jobs, receiver) = crossbeam_channel::unbounded::<()>();
        let barrier = Arc::new(Barrier::new(3));
        let (done, finished) = crossbeam_channel::unbounded();
        let stop = StopSignal::new();
        let pool = {
            let barrier = Arc::clone(&barrier);
            let stop = stop.clone();
            std::thread::spawn(move || {
                run_pool(receiver, &spec(8), &stop, move |()| {
                    barrier.wait();
                    done.send(()).unwrap();
                })
            })
        };
        for _ in 0..3 {
            jobs.send(()).unwrap();
        }
        for _ in 0..3 {
            finished
                .recv_timeout(Duration::from_secs(30))
                .expect("all three jobs ran together");
        }
        drop(jobs);
        pool.join().unwrap();
    }

    /// At the bound, jobs wait for a free thread instead of starting more.
    #[test]
    fn the_pool_stays_within_its_bound() {
        let (jobs, receiver) = crossbeam_channel::unbounded::<u32>();
        let (started, running) = crossbeam_channel::unbounded();
        let (release, released) = crossbeam_channel::unbounded::<()>();
        let stop = StopSignal::new();
        let pool = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                run_pool(receiver, &spec(2), &stop, move |job| {
                    started.send(job).unwrap();
                    released.recv().unwrap();
                })
            })
        };
        for job in 0..3 {
            jobs.send(job).unwrap();
        }
        let wait = Duration::from_secs(30);
        let first = running.recv_timeout(wait).unwrap();
        let second = running.recv_timeout(wait).unwrap();
        assert_ne!(first, second);
        // Both threads are busy: the third job waits until one is released.
        assert!(running.recv_timeout(Duration::from_millis(200)).is_err());
        release.send(()).unwrap();
        assert_eq!(running.recv_timeout(wait), Ok(2));
        release.send(()).unwrap();
        release.send(()).unwrap();
        drop(jobs);
        pool.join().unwrap();
    }
}
