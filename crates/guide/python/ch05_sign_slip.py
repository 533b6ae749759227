"""Chapter 5: the article's sign slip. Start minus now is the elapsed time negated, and Python
prints a negative timedelta as minus one day plus the rest."""

import time
from datetime import datetime

start_time = datetime.now()
time.sleep(0.05)
print(start_time - datetime.now())
print(datetime.now() - start_time)
