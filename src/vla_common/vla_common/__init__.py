# SPDX-License-Identifier: Apache-2.0
"""Message conversions, QoS, config, node-graph description and the vla command line."""
