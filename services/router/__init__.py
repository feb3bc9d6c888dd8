"""Router: hits to per-member outboxes, and the member-facing gRPC server (HitDelivery in delivery.py;
WatchlistAdmin and RulesAdmin in admin.py)."""
