//! TCP sockets and name lookup for notifiers, limited to the plugin's
//! `allow_hosts` by the same rules as outbound HTTP (see `egress`).
//!
//! wasmtime-wasi checks every socket address against one callback
//! ([`Sockets::permits`]) but only ever shows it an IP address, so the name a
//! guest meant is lost by the time it connects. The host therefore answers
//! `wasi:sockets/ip-name-lookup` itself ([`add_to_linker`] shadows
//! wasmtime-wasi's implementation) and remembers which allowed name each
//! address it handed out came from:
//!
//! - a lookup resolves only names listed in `allow_hosts` (with any port, as a
//!   lookup has none); its answer drops loopback, private and other special
//!   addresses unless the address itself is listed, exactly as an HTTP
//!   request's does; a name left with nothing is `access-denied`;
//! - a TCP connect is allowed to an address listed literally (with a matching
//!   port), or to an address a lookup of this instance returned for a name
//!   listed with that port;
//! - the implicit bind of a connect (the unspecified address, port 0) is
//!   allowed; explicit binds, listening and all of UDP are not.
//!
//! Exporters and relabelers get none of it: their stores keep TCP off and
//! their lookups are `access-denied`.

use crate::egress::{Egress, is_special};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime::component::{Linker, Resource, ResourceTable, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::{DynPollable, Network, Pollable, subscribe};
use wasmtime_wasi::sockets::SocketAddrUse;

/// The version of `wasi:sockets` the host implements; components importing an
/// older 0.2.x are matched to it by the linker.
const IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// The socket policy of one store.
#[derive(Clone)]
pub(crate) struct Sockets(Arc<Inner>);

struct Inner {
    /// `None`: no sockets at all (exporters, relabelers).
    egress: Option<Egress>,
    /// Each address a lookup handed out, with the allowed names it came from.
    resolved: Mutex<HashMap<IpAddr, Vec<String>>>,
}

/// What a store's WASI context asks before it uses a socket address.
pub(crate) type AddrCheck = Box<
    dyn Fn(SocketAddr, SocketAddrUse) -> Pin<Box<dyn Future<Output = bool> + Send + Sync>>
        + Send
        + Sync,
>;

impl Sockets {
    /// Sockets limited to `egress` (a notifier's allow-list).
    pub fn allowed(egress: Egress) -> Sockets {
        Sockets(Arc::new(Inner {
            egress: Some(egress),
            resolved: Mutex::new(HashMap::new()),
        }))
    }

    /// No sockets and no lookups.
    pub fn denied() -> Sockets {
        Sockets(Arc::new(Inner {
            egress: None,
            resolved: Mutex::new(HashMap::new()),
        }))
    }

    /// Whether the store may open TCP sockets at all.
    pub fn tcp(&self) -> bool {
        self.0.egress.is_some()
    }

    /// The address check for the store's WASI context.
    pub fn check(&self) -> AddrCheck {
        let sockets = self.clone();
        Box::new(move |addr, using| {
            let permitted = sockets.permits(addr, using);
            Box::pin(async move { permitted })
        })
    }

    /// Whether the guest may use `addr` for `using`.
    fn permits(&self, addr: SocketAddr, using: SocketAddrUse) -> bool {
        let Some(egress) = &self.0.egress else {
            return false;
        };
        let ip = addr.ip().to_canonical();
        let permitted = match using {
            // What wasmtime-wasi asks before a connect on an unbound socket.
            SocketAddrUse::TcpBind => ip.is_unspecified() && addr.port() == 0,
            SocketAddrUse::TcpConnect => {
                egress.address_listed(ip, Some(addr.port()))
                    || self
                        .0
                        .resolved
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(&ip)
                        .is_some_and(|names| {
                            names.iter().any(|n| egress.host_allowed(n, addr.port()))
                        })
            }
            _ => false,
        };
        if !permitted {
            tracing::debug!(%addr, ?using, "plugin socket refused: not in allow_hosts");
        }
        permitted
    }

    /// Resolves `name` if the plugin may reach it, keeping only the addresses
    /// it may connect to.
    async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, ErrorCode> {
        let Some(egress) = &self.0.egress else {
            return Err(ErrorCode::AccessDenied);
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        // An address is its own answer; the connect check decides about it.
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip.to_canonical()]);
        }
        if name.is_empty() || name.contains(['/', '@', ' ', ':']) {
            return Err(ErrorCode::InvalidArgument);
        }
        if !egress.name_listed(&name) {
            tracing::debug!(name, "plugin name lookup refused: not in allow_hosts");
            return Err(ErrorCode::AccessDenied);
        }
        let candidates: Vec<IpAddr> = tokio::time::timeout(
            egress.timeout(),
            tokio::net::lookup_host((name.as_str(), 0)),
        )
        .await
        .map_err(|_| ErrorCode::Timeout)?
        .map_err(|_| ErrorCode::NameUnresolvable)?
        .map(|a| a.ip().to_canonical())
        .collect();
        let mut vetted: Vec<IpAddr> = Vec::new();
        for ip in candidates.iter().copied() {
            if (!is_special(ip) || egress.address_listed(ip, None)) && !vetted.contains(&ip) {
                vetted.push(ip);
            }
        }
        if vetted.is_empty() {
            tracing::debug!(
                name,
                ?candidates,
                "plugin name lookup refused: only special addresses"
            );
            return Err(if candidates.is_empty() {
                ErrorCode::NameUnresolvable
            } else {
                ErrorCode::AccessDenied
            });
        }
        let mut resolved = self
            .0
            .resolved
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for ip in &vetted {
            let names = resolved.entry(*ip).or_default();
            if !names.contains(&name) {
                names.push(name.clone());
            }
        }
        Ok(vetted)
    }
}

/// The answer of one lookup, handed to the guest address by address.
pub(crate) struct Resolved(std::vec::IntoIter<IpAddr>);

/// The answer is complete when the stream is created, so it is always ready.
#[wasmtime_wasi::async_trait]
impl Pollable for Resolved {
    async fn ready(&mut self) {}
}

/// What the lookup functions need from a store's state.
pub(crate) trait SocketsView: Send + 'static {
    fn sockets(&self) -> &Sockets;
    fn table(&mut self) -> &mut ResourceTable;
}

/// Replaces wasmtime-wasi's `wasi:sockets/ip-name-lookup` in `linker` (which
/// must already hold wasmtime-wasi's interfaces) with the host's own, which
/// resolves only allowed names and records the answers for the connect check.
pub(crate) fn add_to_linker<T: SocketsView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut lookup = linker.instance(IP_NAME_LOOKUP)?;
    lookup.resource(
        "resolve-address-stream",
        ResourceType::host::<Resolved>(),
        |mut store, rep| {
            store
                .data_mut()
                .table()
                .delete(Resource::<Resolved>::new_own(rep))?;
            Ok(())
        },
    )?;
    lookup.func_wrap_async(
        "resolve-addresses",
        |mut store, (network, name): (Resource<Network>, String)| {
            Box::new(async move {
                // The network handle is the capability to look up; check it is one.
                store.data_mut().table().get(&network)?;
                let sockets = store.data().sockets().clone();
                let answer = match sockets.lookup(&name).await {
                    Ok(ips) => Ok(store.data_mut().table().push(Resolved(ips.into_iter()))?),
                    Err(code) => Err(code),
                };
                Ok((answer,))
            })
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store, (stream,): (Resource<Resolved>,)| {
            let next = store.data_mut().table().get_mut(&stream)?.0.next();
            Ok((Ok::<_, ErrorCode>(next.map(IpAddress::from)),))
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store, (stream,): (Resource<Resolved>,)| {
            let pollable: Resource<DynPollable> = subscribe(store.data_mut().table(), stream)?;
            Ok((pollable,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sockets(hosts: &[&str]) -> Sockets {
        let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        Sockets::allowed(Egress::new(&hosts, Duration::from_secs(5)).unwrap())
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn listed_addresses_and_looked_up_names_may_be_connected() {
        let s = sockets(&["127.0.0.1:2525", "localhost:25", "[::1]"]);
        assert!(s.permits(addr("127.0.0.1:2525"), SocketAddrUse::TcpConnect));
        assert!(!s.permits(addr("127.0.0.1:2526"), SocketAddrUse::TcpConnect));
        assert!(s.permits(addr("[::1]:7"), SocketAddrUse::TcpConnect));
        assert!(s.permits(addr("[::ffff:127.0.0.1]:2525"), SocketAddrUse::TcpConnect));
        // An address no lookup handed out and no entry lists.
        assert!(!s.permits(addr("93.184.216.34:25"), SocketAddrUse::TcpConnect));
        // The implicit bind of a connect, and nothing else of bind, listen or UDP.
        assert!(s.permits(addr("0.0.0.0:0"), SocketAddrUse::TcpBind));
        assert!(!s.permits(addr("0.0.0.0:25"), SocketAddrUse::TcpBind));
        assert!(!s.permits(addr("127.0.0.1:2525"), SocketAddrUse::TcpListen));
        assert!(!s.permits(addr("127.0.0.1:2525"), SocketAddrUse::UdpBind));
        assert!(!s.permits(addr("127.0.0.1:2525"), SocketAddrUse::UdpSend));
    }

    #[tokio::test]
    async fn a_name_behind_loopback_needs_its_address_listed() {
        // `localhost` is allowed but resolves only to loopback: refused.
        let s = sockets(&["localhost:25"]);
        assert_eq!(s.lookup("localhost").await, Err(ErrorCode::AccessDenied));
        assert!(!s.permits(addr("127.0.0.1:25"), SocketAddrUse::TcpConnect));
        // With 127.0.0.1 listed too, the lookup answers it and the port of
        // the name's entry applies.
        let s = sockets(&["LocalHost:25", "127.0.0.1"]);
        let ips = s.lookup("localhost.").await.unwrap();
        assert!(ips.contains(&"127.0.0.1".parse().unwrap()), "{ips:?}");
        assert!(s.permits(addr("127.0.0.1:25"), SocketAddrUse::TcpConnect));
    }

    #[tokio::test]
    async fn names_not_listed_are_not_resolved() {
        let s = sockets(&["smtp.example.com"]);
        assert_eq!(s.lookup("localhost").await, Err(ErrorCode::AccessDenied));
        assert_eq!(s.lookup("a b").await, Err(ErrorCode::InvalidArgument));
        // Addresses come back as they are; the connect check decides.
        assert_eq!(
            s.lookup("10.0.0.1").await,
            Ok(vec!["10.0.0.1".parse().unwrap()])
        );
        assert!(!s.permits(addr("10.0.0.1:25"), SocketAddrUse::TcpConnect));
    }

    #[tokio::test]
    async fn without_a_grant_nothing_is_allowed() {
        let s = Sockets::denied();
        assert!(!s.tcp());
        assert_eq!(s.lookup("localhost").await, Err(ErrorCode::AccessDenied));
        assert!(!s.permits(addr("0.0.0.0:0"), SocketAddrUse::TcpBind));
        assert!(!s.permits(addr("127.0.0.1:25"), SocketAddrUse::TcpConnect));
    }
}
