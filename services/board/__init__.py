"""Members' board policies for the interactive API: a hit's reasons -> a directive for the carrier.

Platform code: the router's BoardAdmin validates a member's policy with it before storing it on the board-policies
topic, and every profiler process replays that topic into a PolicyStore to answer InteractiveCheck.

    policy.py   directives (DIRECTIVE_ORDER, most_restrictive, directive_name, parse_directive), the policy
                (BoardPolicy, default_policy), its YAML files (parse_policy, PolicyLimits, PolicyError, the
                template services/data/board_policy.yaml: template_text) and PolicyStore
"""

from services.board.policy import (
    DIRECTIVE_ORDER,
    BoardPolicy,
    PolicyError,
    PolicyLimits,
    PolicyStore,
    default_policy,
    directive_name,
    most_restrictive,
    parse_directive,
    parse_policy,
    template_text,
)

__all__ = [
    "DIRECTIVE_ORDER",
    "BoardPolicy",
    "PolicyError",
    "PolicyLimits",
    "PolicyStore",
    "default_policy",
    "directive_name",
    "most_restrictive",
    "parse_directive",
    "parse_policy",
    "template_text",
]
