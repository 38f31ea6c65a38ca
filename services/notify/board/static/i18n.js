// Interface text in English and Chinese. The language comes from ?lang=, then the last choice,
// then the browser.

const TEXT = {
  en: {
    title: "dealerwatch · operations board",
    you: "You", apiKey: "API key", switchLanguage: "中文",
    live: "live", connecting: "connecting…", disconnected: "disconnected, reconnecting…",
    severity: "Severity", status: "Status", rule: "Rule", region: "Region", dealer: "Dealer",
    any: "any", active: "open or acknowledged", all: "all",
    critical: "critical", warning: "warning", info: "info",
    open: "open", acknowledged: "acknowledged", resolved: "resolved", silenced: "silenced", new: "new",
    summary: "Summary", owner: "Responsible", firstSeen: "First seen", actions: "Actions",
    assignee: "Assignee", unassigned: "unassigned", assigned: "assigned", noted: "finding",
    mine: "Mine", assign: "Assign", addFinding: "Add a finding", to: "To",
    acknowledge: "Acknowledge", resolve: "Resolve", silence: "Silence",
    note: "Note", cause: "Cause", comment: "Why", duration: "For", matchers: "Silence alerts with",
    submit: "Confirm", cancel: "Cancel", noAlerts: "No alerts match.",
    whoFirst: "Enter your name first (top right): every action is recorded with it.",
    keyNeeded: "This action needs an operator key (top right).",
    keyToRead: "This board needs an API key: type a viewer or operator key at the top right.",
    hours: "h", days: "d", showing: "{n} alerts shown", truncated: "Only the newest {n} are shown: narrow the filters to see the others.",
    dealerFile: "Dealer file", back: "← Board", weeklySales: "Weekly net sales",
    netSales: "net sales", baseline: "baseline ({weeks} weeks before)", target: "target",
    belowBaseline: "below {percent}% of baseline",
    measures: "Measures the rules keep", openAlerts: "Open alerts", pastAlerts: "Past alerts",
    promotions: "Promotions", visits: "Visits", none: "none",
    feedback: "Dealer feedback", received: "Received", channel: "Channel", topic: "Topic", said: "What was said", text: "Finding",
    answer: "Answer", feedbackDays: "Days waited or to answer", unanswered: "unanswered", answered: "answered",
    hotline: "hotline", publication: "publication", other: "other",
    warningsReport: "Warnings", weeklyRaisedResolved: "Raised and resolved per week, by region", oldestOpen: "Oldest open warnings by assignee",
    raised: "Raised", resolved_by_rules: "Resolved by the rules", resolved_by_person: "Resolved by a person",
    oldest_open_hours: "Oldest open (h)", ack_p50_minutes: "Ack p50 (min)", ack_p90_minutes: "Ack p90 (min)",
    resolve_p50_hours: "Resolve p50 (h)", resolve_p90_hours: "Resolve p90 (h)", recurred_30d: "Recurred within 30 d",
    promotionsReport: "Promotions", ended: "Ended", net_effect: "Net effect", below_expectation: "Below expectation",
    over_budget: "Over budget", unapproved_spend: "Spent unapproved", ends: "Ends", before: "Before", promotion: "Promotion", verdict: "Verdict",
    budget: "Budget", approvedBy: "Approved by", spend: "Spend", evaluation: "Evaluation",
    notApproved: "not approved", effective: "effective", ineffective: "ineffective", "no-spend": "no spend",
    ratio: "ratio", kind: "Kind", role: "Role", visitor: "Visitor", date: "Date", period: "Period",
    routine: "routine", leadership: "leadership", symposium: "symposium",
    unavailable: "not available: {reason}",
    shownOf: "{shown} shown of {total} (the API pages through the rest)",
    details: "details", history: "History", deliveries: "Notifications",
    opened: "opened", firing: "firing", repeat: "reminder", escalation: "escalation",
    pending: "pending", delivered: "delivered", failed: "failed",
    masterData: "Dealer", name: "Name", tier: "Tier", contact: "Contact", phone: "Phone", registered: "Registered",
    notRegistered: "not registered (no dealer file yet)",
    outlets: "Outlets", outlet: "Outlet", outletFile: "Outlet file", level: "Level", "sub-distributor": "sub-distributor",
    retail: "retail", outletOpen: "open", closed: "closed", lastSale: "Last sale", netSales30d: "Net sales, 30 days", sales: "Sales",
    quantity: "Quantity", amount: "Amount", alerts: "Alerts",
    visitPlans: "Visit plans", plan: "Plan", plannedFor: "Planned for", visitedAt: "Visited",
    planned: "planned", done: "done", "done-late": "done late", missed: "missed", cancelled: "cancelled",
    expected: "Expected", actual: "Actual", met: "met", notMet: "not met",
    report: "Visit-plan report", groupBy: "Group by", since: "From", until: "To", show: "Show",
    group: "Group", plans: "Plans", onTimeRate: "On time", unknownRegion: "(no region)",
    policyView: "Policy", version: "Version", loadedAt: "loaded", policyRules: "Rules of the live policy", kind: "Kind", condition: "Condition", thresholds: "Thresholds", reloadHistory: "Reloads", outcome: "Outcome", versions: "Versions", errors: "Errors", accepted: "accepted", refused: "refused", lastDiff: "The last change on the archive's last days", noChangeYet: "No change since the archive began.", onlyBefore: "Only before", onlyAfter: "Only after", otherTimes: "At other times", at: "At", event: "Event", diffSummary: "{from} → {to} on {events} events of the last {days} days: {before} alerts before, {after} after; {onlyOld} only before, {onlyNew} only after, {moved} at other times.",
    supportView: "Support", supportPriorities: "Where support is needed most", score: "Score", targetGap: "Behind target", baselineGap: "Below baseline", alertWeight: "Alert weight", lastSupport: "Last support", sendSupport: "Send support", supportRunning: "Support running now", support: "Support", daysLeft: "Days left", supportPast: "Past support", netCost: "Cost (ours)", alertsResolved: "Alerts resolved", rep: "rep", supervisor: "supervisor", promoter: "promoter", vehicle: "vehicle", "no-cost": "no cost", starts: "Starts", cost: "Cost", dealerShare: "Dealer's share", reason: "Reason", supportSent: "Sent: it shows here once rules has judged it.", incentives: "Incentives (rebates, awards)", program: "Program", rate: "Rate", accrued: "Accrued", nextGap: "To the next tier", gateTarget: "Gate", projected: "Projected", pastPeriods: "Past periods",
  },
  zh: {
    title: "经销商预警 · 运营看板",
    you: "操作人", apiKey: "API 密钥", switchLanguage: "English",
    live: "实时", connecting: "连接中…", disconnected: "已断开，正在重连…",
    severity: "级别", status: "状态", rule: "规则", region: "区域", dealer: "经销商",
    any: "全部", active: "待处理或已确认", all: "全部",
    critical: "严重", warning: "警告", info: "提示",
    open: "待处理", acknowledged: "已确认", resolved: "已解决", silenced: "已静默", new: "新",
    summary: "摘要", owner: "责任人", firstSeen: "首次发现", actions: "操作",
    assignee: "处理人", unassigned: "未指派", assigned: "指派", noted: "调查记录",
    mine: "我的", assign: "指派", addFinding: "添加调查记录", to: "指派给",
    acknowledge: "确认", resolve: "解决", silence: "静默",
    note: "备注", cause: "原因", comment: "理由", duration: "时长", matchers: "静默以下预警",
    submit: "确定", cancel: "取消", noAlerts: "没有符合条件的预警。",
    whoFirst: "请先在右上角填写操作人：每个操作都会记录操作人。",
    keyNeeded: "此操作需要操作员密钥（右上角）。",
    keyToRead: "查看此看板需要 API 密钥：请在右上角输入查看者或操作员密钥。",
    hours: "小时", days: "天", showing: "显示 {n} 条", truncated: "仅显示最新 {n} 条：请缩小筛选范围查看其他预警。",
    dealerFile: "经销商档案", back: "← 看板", weeklySales: "每周净销售额",
    netSales: "净销售额", baseline: "基线（前 {weeks} 周平均）", target: "目标",
    belowBaseline: "低于基线 {percent}%",
    measures: "规则跟踪的指标", openAlerts: "未解决预警", pastAlerts: "历史预警",
    promotions: "促销", visits: "拜访记录", none: "无",
    feedback: "经销商反馈", received: "收到时间", channel: "渠道", topic: "主题", said: "反馈内容", text: "调查内容",
    answer: "答复", feedbackDays: "等待或答复天数", unanswered: "未答复", answered: "已答复",
    hotline: "热线", publication: "内部刊物", other: "其他",
    warningsReport: "预警处理", weeklyRaisedResolved: "各区域每周新增与解决", oldestOpen: "各处理人最久未处理预警",
    raised: "新增", resolved_by_rules: "规则自动解决", resolved_by_person: "人工解决",
    oldest_open_hours: "最久未处理（小时）", ack_p50_minutes: "确认 p50（分钟）", ack_p90_minutes: "确认 p90（分钟）",
    resolve_p50_hours: "解决 p50（小时）", resolve_p90_hours: "解决 p90（小时）", recurred_30d: "30 天内复发",
    promotionsReport: "促销问责", ended: "已结束", net_effect: "净效果", below_expectation: "低于预期",
    over_budget: "超预算", unapproved_spend: "未批先支", ends: "结束日", before: "之前", promotion: "促销", verdict: "结论",
    budget: "预算", approvedBy: "审批人", spend: "费用", evaluation: "效果评估",
    notApproved: "未审批", effective: "有效", ineffective: "无效", "no-spend": "无费用",
    ratio: "比率", kind: "类型", role: "角色", visitor: "拜访人", date: "日期", period: "期间",
    routine: "例行拜访", leadership: "领导拜访", symposium: "座谈会",
    unavailable: "暂不可用：{reason}",
    shownOf: "显示 {shown} 条，共 {total} 条（其余可通过 API 分页查看）",
    details: "详情", history: "处理记录", deliveries: "通知记录",
    opened: "发现", firing: "首次通知", repeat: "提醒", escalation: "升级",
    pending: "待发送", delivered: "已送达", failed: "发送失败",
    masterData: "经销商信息", name: "名称", tier: "等级", contact: "联系人", phone: "电话", registered: "建档时间",
    notRegistered: "未建档（尚无经销商档案）",
    outlets: "网点", outlet: "网点", outletFile: "网点档案", level: "层级", "sub-distributor": "二批",
    retail: "零售", outletOpen: "营业中", closed: "已关闭", lastSale: "最近进货", netSales30d: "近 30 天净销售额", sales: "销售记录",
    quantity: "数量", amount: "金额", alerts: "预警",
    visitPlans: "拜访计划", plan: "计划", plannedFor: "计划日期", visitedAt: "拜访时间",
    planned: "待执行", done: "按时完成", "done-late": "延期完成", missed: "未执行", cancelled: "已取消",
    expected: "预期", actual: "实际", met: "达成", notMet: "未达成",
    report: "拜访计划执行报表", groupBy: "分组", since: "开始", until: "结束", show: "查询",
    group: "分组", plans: "计划数", onTimeRate: "按时率", unknownRegion: "（无区域）",
    policyView: "预警规则", version: "版本", loadedAt: "加载于", policyRules: "当前规则", kind: "类型", condition: "条件", thresholds: "阈值", reloadHistory: "加载记录", outcome: "结果", versions: "版本变化", errors: "错误", accepted: "已采用", refused: "已拒绝", lastDiff: "最近一次修改在存档数据上的影响", noChangeYet: "存档以来没有修改。", onlyBefore: "仅修改前", onlyAfter: "仅修改后", otherTimes: "时间不同", at: "时间", event: "事件", diffSummary: "{from} → {to}，最近 {days} 天的 {events} 条事件：修改前 {before} 条预警，修改后 {after} 条；仅修改前 {onlyOld}，仅修改后 {onlyNew}，时间不同 {moved}。",
    supportView: "人员车辆支持", supportPriorities: "最需要支持的经销商", score: "优先分", targetGap: "落后目标", baselineGap: "低于基线", alertWeight: "预警权重", lastSupport: "上次支持", sendSupport: "派出支持", supportRunning: "正在进行的支持", support: "支持", daysLeft: "剩余天数", supportPast: "已结束的支持", netCost: "厂家费用", alertsResolved: "已解决预警", rep: "业务员", supervisor: "主管", promoter: "促销员", vehicle: "车辆", "no-cost": "无费用", starts: "开始日", cost: "费用", dealerShare: "经销商分担", reason: "原因", supportSent: "已派出：规则服务评估后显示在此。", incentives: "激励（返利、年度奖励）", program: "方案", rate: "返利率", accrued: "已计提", nextGap: "距下一档", gateTarget: "门槛", projected: "预计", pastPeriods: "往期",
  },
};

export const LANGUAGES = Object.keys(TEXT);

export function language() {
  const wanted = new URLSearchParams(location.search).get("lang") || localStorage.getItem("dealerwatch.lang")
    || (navigator.language || "en").slice(0, 2);
  return LANGUAGES.includes(wanted) ? wanted : "en";
}

export function t(key, values = {}) {
  const text = TEXT[language()][key] ?? TEXT.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export function switchLanguage() {
  const next = language() === "zh" ? "en" : "zh";
  localStorage.setItem("dealerwatch.lang", next);
  const params = new URLSearchParams(location.search);
  params.set("lang", next);
  location.search = params.toString();
}

// An alert's summary in the reader's language (rules sends every language the policy has).
export function summaryOf(alert) {
  return alert.summaries?.[language()] || alert.summary;
}

// "name (id)" once the dealer is registered, else the id.
export function dealerLabel(dealerId, name) {
  return name ? `${name} (${dealerId})` : dealerId;
}
