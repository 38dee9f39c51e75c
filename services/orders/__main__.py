"""`python -m services.orders`: run the orders service until SIGTERM or SIGINT."""

from services.orders.app import assemble
from services.orders.settings import OrdersSettings
from shared.runtime import run

if __name__ == "__main__":
    run(OrdersSettings(), assemble)
