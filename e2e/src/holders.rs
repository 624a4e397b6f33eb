//! Which member namespaces hold an address (a VIP) right now, asked without spawning a
//! process: one thread per member has joined its namespace with `setns(2)` and answers whether
//! a socket can be bound to the address there (it can only when the address is local).

use crate::lab::Lab;
use std::collections::BTreeSet;
use std::fs::File;
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

/// One asking thread per member namespace; dropping it ends the threads.
pub struct AddressHolders {
    askers: Vec<Asker>,
}

struct Asker {
    member: String,
    ask: Sender<()>,
    answer: Receiver<bool>,
    thread: Option<JoinHandle<()>>,
}

impl AddressHolders {
    /// Starts the threads for every member of `lab`, asking about `address`.
    pub fn start(lab: &Lab, address: Ipv4Addr) -> AddressHolders {
        let askers = lab
            .member_names()
            .into_iter()
            .map(|member| {
                let (ask, ask_rx) = channel::<()>();
                let (answer_tx, answer) = channel::<bool>();
                let path = format!("/run/netns/{}", lab.netns(&member));
                let thread = std::thread::spawn(move || {
                    let joined = File::open(&path).ok().is_some_and(|f| {
                        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).is_ok()
                    });
                    while ask_rx.recv().is_ok() {
                        let held = joined && UdpSocket::bind((address, 0)).is_ok();
                        if answer_tx.send(held).is_err() {
                            break;
                        }
                    }
                });
                Asker {
                    member,
                    ask,
                    answer,
                    thread: Some(thread),
                }
            })
            .collect();
        AddressHolders { askers }
    }

    /// The members whose namespace holds the address now (asked of all at once).
    pub fn sample(&self) -> Result<BTreeSet<String>, String> {
        for a in &self.askers {
            a.ask.send(()).map_err(|_| "a namespace thread died")?;
        }
        let mut holders = BTreeSet::new();
        for a in &self.askers {
            if a.answer.recv().map_err(|_| "a namespace thread died")? {
                holders.insert(a.member.clone());
            }
        }
        Ok(holders)
    }
}

impl Drop for AddressHolders {
    fn drop(&mut self) {
        for mut a in self.askers.drain(..) {
            drop(a.ask);
            if let Some(t) = a.thread.take() {
                let _ = t.join();
            }
        }
    }
}
