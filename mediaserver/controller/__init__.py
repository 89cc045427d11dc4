"""Control plane: campaigns, routing, queue, dispatcher, retries, actions."""
