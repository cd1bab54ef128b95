"""Client of HAProxy: the runtime API, decoded server states, and the LoadBalancer seam.

* ``runtime``      RuntimeClient (unix socket or TCP): show_servers_state, show_stat, set_server_state,
                   shutdown_sessions, show_info, raw/command/query
* ``states``       ServerState, OpState, AdminFlag, AdminCommand, parse_servers_state
* ``stat``         StatRow, parse_show_stat
* ``loadbalancer`` LoadBalancer protocol, LBServer, TargetState, HAProxyLoadBalancer
* ``persistence``  save_server_state (dump before a reload), configured_state_file
"""

from .loadbalancer import HAProxyLoadBalancer, LBServer, LoadBalancer, TargetState
from .persistence import configured_state_file, save_server_state
from .runtime import RuntimeAddress, RuntimeClient
from .stat import StatRow, parse_show_stat
from .states import AdminCommand, AdminFlag, OpState, ServerState, admin_word, parse_servers_state

__all__ = [
    "AdminCommand",
    "AdminFlag",
    "HAProxyLoadBalancer",
    "LBServer",
    "LoadBalancer",
    "OpState",
    "RuntimeAddress",
    "RuntimeClient",
    "ServerState",
    "StatRow",
    "TargetState",
    "admin_word",
    "configured_state_file",
    "parse_servers_state",
    "parse_show_stat",
    "save_server_state",
]
