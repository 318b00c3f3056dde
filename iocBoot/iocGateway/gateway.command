# gateway.command - what gw:commandFlag (write 1) and `kill -USR1 <pid>`
# make the gateway do, line by line (documentation/statistics.md):
#   R1  append report 1 (virtual connections: clients, their traffic and
#       channels, the busiest clients and PVs) to gateway.report
#   R2  append report 2 (process variables by state)
#   R3  append report 3 (the access rules in force)
#   AS  reload gateway.pvlist and gateway.access (as gw:newAsFlag)
R1
R2
