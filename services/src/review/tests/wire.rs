use crate::review::*;
