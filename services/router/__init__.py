"""Router: hits to per-member outboxes, and the member-facing gRPC server (HitDelivery, WatchlistAdmin)."""
