"""Where the services run: the Platform interface, the Nomad implementation, and the choice between targets."""
