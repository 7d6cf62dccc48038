//! Color math and color choice, by topic: color values and their parsing (`value`),
//! readability and contrast (`contrast`) and the color modes that pick a user's next color
//! (`mode`). Pure: no I/O, randomness comes in as an argument. Callers import from here; the
//! files import each other directly (`mode` -> `contrast` -> `value`), never through this one.

mod contrast;
mod mode;
mod value;

pub use contrast::*;
pub use mode::*;
pub use value::*;
