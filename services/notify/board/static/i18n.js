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
    budget: "Budget", approvedBy: "Approved by", spend: "Spend", evaluation: "Evaluation",
    notApproved: "not approved", effective: "effective", ineffective: "ineffective", "no-spend": "no spend",
    ratio: "ratio", kind: "Kind", role: "Role", visitor: "Visitor", date: "Date", period: "Period",
    routine: "routine", leadership: "leadership", symposium: "symposium",
    unavailable: "not available: {reason}",
    details: "details", history: "History", deliveries: "Notifications",
    opened: "opened", firing: "firing", repeat: "reminder", escalation: "escalation",
    pending: "pending", delivered: "delivered", failed: "failed",
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
    budget: "预算", approvedBy: "审批人", spend: "费用", evaluation: "效果评估",
    notApproved: "未审批", effective: "有效", ineffective: "无效", "no-spend": "无费用",
    ratio: "比率", kind: "类型", role: "角色", visitor: "拜访人", date: "日期", period: "期间",
    routine: "例行拜访", leadership: "领导拜访", symposium: "座谈会",
    unavailable: "暂不可用：{reason}",
    details: "详情", history: "处理记录", deliveries: "通知记录",
    opened: "发现", firing: "首次通知", repeat: "提醒", escalation: "升级",
    pending: "待发送", delivered: "已送达", failed: "发送失败",
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
