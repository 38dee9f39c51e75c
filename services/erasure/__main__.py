"""`python -m services.erasure`: run the erasure service until SIGTERM or SIGINT."""

from services.erasure.app import DEFINITION
from shared.runtime import run

if __name__ == "__main__":
    run(DEFINITION)
