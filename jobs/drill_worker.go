package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
)

// Drills is what the drill jobs drive (app.Drills).
type Drills interface {
	Advance(ctx context.Context, id int64) (time.Duration, error)
	Schedule(ctx context.Context) ([]app.Drill, error)
}

// DrillWorker carries one drill from its start to its verdict: each run
// advances it (app.Drills.Advance) and snoozes until it should look again,
// so a drill's minutes cost no worker slot, and an instance that dies
// mid-drill leaves the job for another. A snooze spends no attempt.
type DrillWorker struct {
	river.WorkerDefaults[app.DrillArgs]
	drills Drills
}

func (w *DrillWorker) Work(ctx context.Context, job *river.Job[app.DrillArgs]) error {
	again, err := w.drills.Advance(ctx, job.Args.DrillID)
	if err != nil {
		return err
	}
	if again > 0 {
		return river.JobSnooze(again)
	}
	return nil
}

// DrillScheduleWorker starts the drills of the current schedule slot
// (DRILL_SCHEDULE). Its periodic job runs on River's leader only; the
// drills' unique slot keeps a second leader from drilling a slot twice.
type DrillScheduleWorker struct {
	river.WorkerDefaults[app.DrillScheduleArgs]
	drills Drills
}

func (w *DrillScheduleWorker) Work(ctx context.Context, _ *river.Job[app.DrillScheduleArgs]) error {
	_, err := w.drills.Schedule(ctx)
	return err
}

// drillPeriodicJob checks the drill schedule every minute (or every slot,
// when shorter) and at start: a restart or a leader change then neither
// skips a slot nor, the slot being unique, repeats one. Checking often
// rather than once per slot is what makes a weekly schedule survive daily
// deploys: River's interval restarts with each leader.
func drillPeriodicJob(schedule time.Duration) *river.PeriodicJob {
	every := min(schedule, time.Minute)
	return river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) {
			return app.DrillScheduleArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: every}}
		},
		&river.PeriodicJobOpts{RunOnStart: true})
}
