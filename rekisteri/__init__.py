"""`rekisteri`: the operators' command-line tool. It talks to the services over RabbitMQ only."""
