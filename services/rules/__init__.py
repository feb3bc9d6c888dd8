"""The rule language: members' targeting rules as data, validated at the edge and compiled for the profiler.

Platform code: the router's RulesAdmin validates a member's file with it before storing it on the rules topic,
every profiler compiles the topic's files with it and evaluates them (services.rules.evaluate, over the traveller
frames of services.rules.frames), and `apihub rules` and the member console check and backtest files with the same
code.

    rule.py      Rule: id, owner, score, documentation, a polars expression; the hub's own HUB_RULES
    language.py  the YAML rule files: parse_ruleset (errors name the rule and the line), load_ruleset, the
                 starter templates (services/data/starter_rules.yaml)
    conditions.py  fields and operators, and the node reader that compiles `when:` conditions to polars
    source.py    reading a file's YAML within bounds (RuleLimits: size, nesting, counts; no tags, anchors or
                 control characters), before any rule is built
    store.py     RuleStore: the latest rule set of every owner, fed from the rules topic
    frames.py    the traveller frame read from a batch of manifests (read_travellers, add_features)
    evaluate.py  evaluating rules over a frame: jurisdiction, validity dates, the breaker (evaluate_rules)
"""
