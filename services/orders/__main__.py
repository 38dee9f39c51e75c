"""`python -m services.orders`: run the orders service until SIGTERM or SIGINT."""

from services.orders.app import DEFINITION
from shared.runtime import run

if __name__ == "__main__":
    run(DEFINITION)
