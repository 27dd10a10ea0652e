//! The one wasmtime `Engine` of the process and its epoch ticker.
//!
//! Every [`crate::Runtime`] of a process shares the engine: it holds the
//! pooling allocator's reservations, so two engines would reserve twice. A
//! thread holding only a weak reference bumps the epoch every
//! [`EPOCH_TICK`]; when the last runtime (and so the engine) is dropped, the
//! thread notices and exits.
//!
//! Sizing, for the machines Pharos targets (a few cores, tens of GiB):
//!
//! - at most [`MAX_MEMORY`] per linear memory: the largest `limits.memory` a
//!   plugin may ask for (each memory still reserves 4 GiB of address space plus
//!   guards, which keeps bounds checks out of compiled code; address space,
//!   not memory);
//! - [`TOTAL_INSTANCES`] component instances at once across all plugins, which
//!   bounds the worst case at `TOTAL_INSTANCES × limits.memory` resident;
//! - room in each instance for what language runtimes need (Python and
//!   JavaScript components hold several core modules, large tables).

use crate::error::{Error, ErrorKind};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use wasmtime::{Config, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of call deadlines, and how
/// often a running guest yields to the tokio executor.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The largest linear memory any plugin may have.
pub const MAX_MEMORY: u64 = 1 << 30;

/// Component instances alive at once, across every plugin of the process.
pub const TOTAL_INSTANCES: u32 = 128;

/// The guest's own stack (deep recursion traps past it).
const MAX_WASM_STACK: usize = 1 << 20;

static SHARED: Mutex<Option<EngineWeak>> = Mutex::new(None);

/// The process's engine, built on first use.
pub(crate) fn shared() -> Result<Engine, Error> {
    let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(engine) = slot.as_ref().and_then(EngineWeak::upgrade) {
        return Ok(engine);
    }
    let engine = Engine::new(&config())
        .map_err(|e| Error::new(ErrorKind::Host, format!("cannot build the engine: {e:#}")))?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("pharos-wasm-epoch".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::Host,
                format!("cannot start the epoch ticker: {e}"),
            )
        })?;
    *slot = Some(engine.weak());
    Ok(engine)
}

fn config() -> Config {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(TOTAL_INSTANCES)
        .total_stacks(TOTAL_INSTANCES)
        .total_core_instances(TOTAL_INSTANCES * 8)
        .total_memories(TOTAL_INSTANCES * 2)
        .total_tables(TOTAL_INSTANCES * 4)
        .max_core_instances_per_component(64)
        .max_memories_per_component(16)
        .max_tables_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(1)
        .table_elements(100_000)
        .max_memory_size(MAX_MEMORY as usize);

    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(MAX_WASM_STACK + (1 << 20))
        .parallel_compilation(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}
