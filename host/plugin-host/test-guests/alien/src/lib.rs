//! A relabeler that also imports an interface no Pharos host provides
//! (`test:alien/nope`), so the host must refuse it at load.

use pharos_sdk::{Labels, PluginError, RelabelOutcome, Relabeler};

#[allow(unsafe_code)]
mod alien {
    wit_bindgen::generate!({
        inline: "
            package test:alien@1.0.0;
            interface nope { answer: func() -> u32; }
            world alien { import nope; }
        ",
    });
}

struct Alien(u32);

impl Relabeler for Alien {
    fn configure(_config: &str) -> Result<Self, PluginError> {
        Ok(Alien(alien::test::alien::nope::answer()))
    }

    fn relabel(&mut self, _labels: Labels) -> RelabelOutcome {
        if self.0 == 0 {
            RelabelOutcome::Drop
        } else {
            RelabelOutcome::Keep
        }
    }
}

pharos_sdk::export_relabeler!(Alien);
