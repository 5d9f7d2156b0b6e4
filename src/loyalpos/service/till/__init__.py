"""What happens at the till: identify → quote (with reservation) → confirm,
held carts (挂单), late orders (补单), refunds and the POS reconciliation.
`checkout` is the door; the modules with a leading underscore are its inner
rooms (inputs, the plan model, quoting, booking) and only `till` itself may
import them (an import-linter contract). Staff sessions at a till go here."""
