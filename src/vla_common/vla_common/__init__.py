"""Message conversions, QoS, config, node-graph description and the vla command line."""
