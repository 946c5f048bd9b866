package app

// River priorities: 1 is the highest and River's default, so ordinary work
// is inserted lower, leaving 1 free for an operator to raise a job to.
const (
	PriorityUrgent    = 1
	PriorityHighValue = 2
	PriorityNormal    = 3
	PriorityLow       = 4
)

// PaymentPriority is the River priority a payment's job is inserted at.
func PaymentPriority(amount, highValueAmount int64) int {
	if highValueAmount > 0 && amount >= highValueAmount {
		return PriorityHighValue
	}
	return PriorityNormal
}
