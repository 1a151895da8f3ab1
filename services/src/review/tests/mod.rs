mod args;
mod secrets;
mod specs;
mod validate;
mod wire;
