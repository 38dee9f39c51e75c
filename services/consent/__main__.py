"""`python -m services.consent`: run the consent service until SIGTERM or SIGINT."""

from services.consent.app import DEFINITION
from shared.runtime import run

if __name__ == "__main__":
    run(DEFINITION)
