package app

import (
	"github.com/google/uuid"
	"github.com/riverqueue/river"
)

// Channel is a way a client hears how its operation ended.
type Channel string

const (
	ChannelEmail   Channel = "email"
	ChannelSMS     Channel = "sms"
	ChannelWebhook Channel = "webhook"
)

// QueueDeliveries is the River queue notifications go out on, apart from
// payments so a slow mail server never holds up charging.
const QueueDeliveries = "deliveries"

// DeliveryArgs is one notification of an operation's outcome on one
// channel. Unique by args, so however often a terminal state is recorded,
// a channel is told of it once; a different ending (an operator retried a
// failed payment and it then succeeded) is news and is told too.
type DeliveryArgs struct {
	OperationID uuid.UUID `json:"operation_id" river:"unique"`
	Channel     Channel   `json:"channel" river:"unique"`
	Status      Status    `json:"status" river:"unique"`
}

func (DeliveryArgs) Kind() string { return "delivery" }

func (DeliveryArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue: QueueDeliveries, Priority: PriorityNormal, MaxAttempts: 12,
		UniqueOpts: river.UniqueOpts{ByArgs: true},
	}
}

// NotificationJobs returns the delivery jobs for a terminal operation: one
// per channel the request asked for and this deployment has configured.
func NotificationJobs(op *Operation, configured map[Channel]bool) []river.InsertManyParams {
	if !op.Status.Terminal() {
		return nil
	}
	var want []Channel
	if c := op.Payment.Customer; c != nil {
		if c.Email != "" {
			want = append(want, ChannelEmail)
		}
		if c.Phone != "" {
			want = append(want, ChannelSMS)
		}
	}
	if op.Payment.CallbackURL != "" {
		want = append(want, ChannelWebhook)
	}
	var jobs []river.InsertManyParams
	for _, ch := range want {
		if configured[ch] {
			jobs = append(jobs, river.InsertManyParams{Args: DeliveryArgs{OperationID: op.ID, Channel: ch, Status: op.Status}})
		}
	}
	return jobs
}
