# Reference values for the tests of timeline/queries/comparisons.py, computed once with R
# (Debian: r-cran-cmprsk, r-cran-survival). R is not needed to run the test suite.
#   python tests/reference/export_data.py && Rscript tests/reference/gray_and_survdiff.R
# writes tests/reference/comparisons.json: Gray's test (cmprsk::cuminc) and the (stratified) log-rank test
# (survival::survdiff) on the public bmt and cgvhd data sets of scikit-survival.
library(cmprsk)
library(survival)
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))

bmt <- read.csv(file.path(here, "bmt.csv"))
cg <- read.csv(file.path(here, "cgvhd.csv"))
cg$status2 <- ifelse(cg$status >= 2, 2, cg$status)   # relapse and death: one competing cause
cg$dxtx <- paste(cg$dx, cg$tx, sep = "-")

gray <- function(name, data, group, strata = NULL, rho = 0, cause = 1, status = "status") {
  st <- if (is.null(strata)) NULL else data[[strata]]
  fit <- if (is.null(st)) cuminc(data$ftime, data[[status]], data[[group]], rho = rho, cencode = 0)
         else cuminc(data$ftime, data[[status]], data[[group]], strata = st, rho = rho, cencode = 0)
  row <- fit$Tests[as.character(cause), ]
  list(name = name, data = deparse(substitute(data)), group = group, strata = if (is.null(strata)) NA else strata,
       rho = rho, cause = cause, status = status,
       statistic = unname(row["stat"]), p_value = unname(row["pv"]), df = unname(row["df"]))
}

logrank <- function(name, data, group, strata = NULL, status = "status") {
  ev <- as.integer(data[[status]] == 1)
  f <- if (is.null(strata)) survdiff(Surv(data$ftime, ev) ~ data[[group]])
       else survdiff(Surv(data$ftime, ev) ~ data[[group]] + strata(data[[strata]]))
  df <- length(f$n) - 1
  if (!is.null(strata)) df <- nrow(f$obs) - 1
  list(name = name, data = deparse(substitute(data)), group = group, strata = if (is.null(strata)) NA else strata,
       status = status, statistic = unname(f$chisq), p_value = pchisq(f$chisq, df, lower.tail = FALSE), df = df)
}

out <- list(
  r_version = R.version.string,
  cmprsk = as.character(packageVersion("cmprsk")),
  survival = as.character(packageVersion("survival")),
  gray = list(
    gray("bmt by dis", bmt, "dis"),
    gray("bmt by dis, cause 2", bmt, "dis", cause = 2),
    gray("bmt by dis, rho 1", bmt, "dis", rho = 1),
    gray("cgvhd by dx", cg, "dx", status = "status2"),
    gray("cgvhd by dx, stratified by tx", cg, "dx", strata = "tx", status = "status2"),
    gray("cgvhd by dx and tx (4 groups)", cg, "dxtx", status = "status2"),
    gray("cgvhd by extent, cause 2", cg, "extent", cause = 2, status = "status2")
  ),
  logrank = list(
    logrank("bmt by dis", bmt, "dis"),
    logrank("cgvhd by dx", cg, "dx", status = "status2"),
    logrank("cgvhd by dx, stratified by tx", cg, "dx", strata = "tx", status = "status2"),
    logrank("cgvhd by dx and tx (4 groups)", cg, "dxtx", status = "status2")
  )
)

# a small JSON writer (no extra R package needed): numbers with 17 significant digits
json <- function(x) {
  if (is.list(x)) {
    if (is.null(names(x))) return(paste0("[", paste(sapply(x, json), collapse = ", "), "]"))
    return(paste0("{", paste(sprintf("\"%s\": %s", names(x), sapply(x, json)), collapse = ", "), "}"))
  }
  if (length(x) == 1 && is.na(x)) return("null")
  if (is.character(x)) return(sprintf("\"%s\"", x))
  sprintf("%.17g", x)
}
writeLines(json(out), file.path(here, "comparisons.json"))
