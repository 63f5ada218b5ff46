package server

import (
	"context"

	"github.com/perpetuo/perpetuo/gen/api"
)

// GetSpend implements api.StrictServerInterface.
func (s *Server) GetSpend(ctx context.Context, req api.GetSpendRequestObject) (api.GetSpendResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	p := req.Params
	period := ""
	if p.Period != nil {
		period = string(*p.Period)
	}
	h, err := s.spend.History(ctx, caller, string(p.Scope), deref(p.Id), period, deref(p.Limit))
	if err != nil {
		return nil, err
	}
	var out api.GetSpend200JSONResponse
	out.Data.Scope, out.Data.Id, out.Data.Period = api.SpendHistoryDataScope(h.Scope), h.ID, api.SpendHistoryDataPeriod(h.Period)
	if h.Limit.Valid {
		out.Data.LimitUsd = ptrTo(money(h.Limit.Decimal))
	}
	out.Data.Periods = make([]api.SpendPeriod, len(h.Periods))
	for i, x := range h.Periods {
		out.Data.Periods[i] = api.SpendPeriod{PeriodStart: x.Start, Usage: money(x.Usage)}
		if x.BYOK.Valid {
			out.Data.Periods[i].ByokUsage = ptrTo(money(x.BYOK.Decimal))
		}
	}
	return out, nil
}
