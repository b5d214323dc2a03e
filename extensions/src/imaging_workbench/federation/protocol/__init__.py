"""What the hub, the FLARE server and the sites share: task and result shapes, job states,
parameter checks, the component allow-list, and the disclosure rules every release passes."""
