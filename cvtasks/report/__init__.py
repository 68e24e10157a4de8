"""`cvtasks report OUT`: a static, self-contained web page of what a run found."""
