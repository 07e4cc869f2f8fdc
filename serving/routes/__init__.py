"""The model server's routers, one per resource: chat (with models), feedback, admin, ops."""
