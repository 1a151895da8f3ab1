mod args;
mod secrets;
mod validate;
mod wire;
