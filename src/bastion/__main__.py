from bastion.cli import main

# Guarded: worker processes started with the "spawn" method import the main module again
# (``db import`` parses large archives in them), and must not run the command a second time.
if __name__ == "__main__":
    main()
