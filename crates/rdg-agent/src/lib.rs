//! Host-side pieces of rdg. So far: the role file (the agent's answer to "am I hot, and until
//! when?") and the gate that runs a command only while that answer is yes. The network runtime
//! that drives `rdg_core::election::Node` will live here too.

pub mod clock;
pub mod gate;
pub mod role_file;
