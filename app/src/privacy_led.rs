//! The privacy LED (`gpio.privacy_led`): lit while at least one viewer watches, so
//! people in front of the camera can see when it is being watched.

use std::time::Duration;

use crate::hub::Hub;

/// Something that can be switched on and off.
pub trait Led: Send {
    /// Switches the LED.
    fn set(&mut self, on: bool) -> Result<(), LedError>;
}

/// Why the LED cannot be driven.
#[derive(Debug, thiserror::Error)]
pub enum LedError {
    /// The GPIO pin cannot be opened or driven (not a Pi, pin in use, no access).
    #[error("GPIO {pin} (gpio.privacy_led): {source}")]
    Gpio {
        /// BCM pin number.
        pin: u8,
        /// What rppal reported.
        source: rppal::gpio::Error,
    },
}

/// An LED on a Raspberry Pi GPIO pin (BCM numbering), driven high when on. The pin
/// returns to its previous mode when this is dropped.
pub struct GpioLed {
    pin: rppal::gpio::OutputPin,
}

impl GpioLed {
    /// Opens BCM pin `pin` as an output, off.
    pub fn open(pin: u8) -> Result<Self, LedError> {
        let gpio = |source| LedError::Gpio { pin, source };
        let mut output = rppal::gpio::Gpio::new()
            .map_err(gpio)?
            .get(pin)
            .map_err(gpio)?
            .into_output_low();
        output.set_reset_on_drop(true);
        Ok(GpioLed { pin: output })
    }
}

impl Led for GpioLed {
    fn set(&mut self, on: bool) -> Result<(), LedError> {
        if on {
            self.pin.set_high();
        } else {
            self.pin.set_low();
        }
        Ok(())
    }
}

/// How often the viewer count is looked at.
pub const POLL: Duration = Duration::from_millis(200);

/// Keeps `led` lit while the hub has viewers; runs until the task is dropped.
pub async fn follow_viewers(hub: Hub, mut led: impl Led, poll: Duration) {
    let mut lit = None;
    let mut warned = false;
    loop {
        let on = hub.viewer_count() > 0;
        if lit != Some(on) {
            match led.set(on) {
                Ok(()) => {
                    tracing::debug!(on, "privacy LED");
                    lit = Some(on);
                }
                Err(error) if !warned => {
                    tracing::warn!(%error, "cannot switch the privacy LED");
                    warned = true;
                }
                Err(_) => {}
            }
        }
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubLimits;
    use std::sync::{Arc, Mutex};

    /// Records every switch.
    #[derive(Clone, Default)]
    struct FakeLed(Arc<Mutex<Vec<bool>>>);

    impl Led for FakeLed {
        fn set(&mut self, on: bool) -> Result<(), LedError> {
            self.0.lock().unwrap().push(on);
            Ok(())
        }
    }

    async fn wait_for(led: &FakeLed, expected: &[bool]) {
        for _ in 0..200 {
            if led.0.lock().unwrap().as_slice() == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!(
            "LED went {:?}, expected {expected:?}",
            led.0.lock().unwrap()
        );
    }

    #[tokio::test]
    async fn the_led_is_lit_exactly_while_someone_watches() {
        let hub = Hub::new(HubLimits::for_frame_rate(25.0, 4), None);
        let led = FakeLed::default();
        let task = tokio::spawn(follow_viewers(
            hub.clone(),
            led.clone(),
            Duration::from_millis(10),
        ));
        wait_for(&led, &[false]).await;
        let first = hub
            .subscribe(None, crate::hub::Transport::Internal)
            .unwrap();
        wait_for(&led, &[false, true]).await;
        let second = hub
            .subscribe(None, crate::hub::Transport::Internal)
            .unwrap();
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        wait_for(&led, &[false, true]).await; // still one viewer: no flicker
        drop(second);
        wait_for(&led, &[false, true, false]).await;
        task.abort();
    }

    #[test]
    fn opening_a_pin_off_a_pi_is_a_clear_error() {
        // This machine has no Raspberry Pi GPIO; on a Pi the pin opens.
        if std::path::Path::new("/dev/gpiomem").exists() {
            return;
        }
        let error = GpioLed::open(17).err().expect("no GPIO here");
        assert!(error
            .to_string()
            .starts_with("GPIO 17 (gpio.privacy_led): "));
    }
}
