"""The review page's routers, one per resource: sign-in, queue, items, audit."""
